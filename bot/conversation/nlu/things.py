"""Things residents ask for or report, by kind, in Mandarin and Cantonese: the item lexicon's breadth
(`normalize.ITEMS` is its core and these lists together).

A fresh resident names things no earlier message named; the reading finds most of them from the sentence's structure
(`nlu.heads`), but a Cantonese name the tagger cuts or mis-tags (冷衫, 拖孩, 梳化, 衣车), a thing named where no
structure governs it, or a compound whose head is generic (暖水袋, 冲凉凳) needs to be known. Each list is a kind of
thing, written from the domain (household, kitchen, bedding, clothes, aids, school, food, electronics, facilities and
their parts, services), not from any evaluation set. Words of two characters or more only; no word that is also an
ordinary word of another sense (遮, 锁, 琴, 面); no ground or water that is mostly the place of another thing
(河堤, 斜坡, 水池, 天桥, 楼梯: the structure reads them when they are the thing).
"""

from __future__ import annotations

_KINDS = {
    "household": """
        热水袋 暖水袋 暖手宝 暖炉 电暖炉 电暖气 油汀 暖水壶 暖水瓶 热水瓶 保温瓶 保温杯 水壶 蚊香 电蚊拍 灭蚊灯
        衣架 晾衣杆 晾衫架 晾衫竹 拖把 地拖 扫把 垃圾袋 水桶 脸盆 面盆 冲凉盆 足浴盆 洗脚盆 冰柜 抽湿机 除湿机
        空气净化器 加湿器 吸尘器 熨斗 电熨斗 缝纫机 衣车 梳化 鞋柜 碗柜 橱柜 饭台 饭桌 餐桌 行军床
        婴儿床 学习桌 冷气 冷气机 空调扇 风筒 电吹风 手电筒 电筒 应急灯 充电宝 排插 拖板 光管 节能灯 夜灯 门帘
        防盗网 防盗窗 铁闸 门铃 门禁 热水炉 燃气热水器 煤气瓶 液化气 石油气 吊扇 座地扇 排气扇 抽气扇 抽风机
        机顶盒 音响 收音机 录音机 座机 挂钟 镜子 雨伞 雨衣 卫生纸 纸巾 湿纸巾 洗衣粉 洗衣液 洗洁精 肥皂
        牙膏 牙刷 毛巾 洗头水 洗发水 沐浴露 消毒柜 饮水机 净水器 水龙头 花洒 马桶盖 坐便器 蹲厕 洗手盆 洗衫机
        干衣机 烘干机 衣柜 储物柜 货架 置物架
    """,
    "kitchen": """
        电饭煲 电饭锅 电压力锅 高压锅 压力锅 炒锅 铁锅 汤煲 砂锅 蒸锅 镬铲 锅铲 砧板 菜板 菜刀 刀具 碗筷
        筷子 饭碗 餐具 饭盒 保鲜盒 电热水壶 电水壶 烧水壶 微波炉 烤箱 电磁炉 煤气炉 煤气灶 燃气灶 抽油烟机 油烟机
        豆浆机 榨汁机 破壁机 搅拌机 电蒸锅 杯子 水杯
    """,
    "bedding": """
        被铺 被褥 棉胎 棉被 被子 空调被 被套 床单 床笠 枕套 枕头 床垫 床褥 凉席 竹席 草席 席子 蚊帐
        毛毯 毯子 电热毯 绒毯 褥子 铺盖 隔尿垫 护理垫
    """,
    "clothes": """
        冬衣 棉衣 棉袄 羽绒服 羽绒衣 外套 大衣 冷衫 毛衣 毛衫 卫衣 秋衣 秋裤 绒裤 棉裤 保暖内衣 保暖衣 内衣 内裤
        袜子 手套 围巾 冷帽 帽子 棉鞋 波鞋 运动鞋 雨鞋 水鞋 校服 校裤 校鞋 工衣 工作服 护士服
        矫形鞋
    """,
    "aids": """
        轮椅 助行架 助行器 拐杖 拐棍 手杖 四脚拐 腋拐 盲杖 导盲杖 坐便椅 坐厕椅 便椅 便盆 尿壶 尿袋
        尿片 纸尿片 纸尿裤 尿不湿 看护垫 气垫床 护理床 医疗床 沐浴椅 洗澡椅 洗澡凳
        冲凉凳 冲凉椅 助听器 老花镜 放大镜 助视器 眼镜 假牙 假肢 义肢 义乳 假发 护腰 护膝 腰托 颈托 血压计
        血糖仪 试纸 血糖试纸 体温计 探热针 制氧机 氧气机 氧气瓶 雾化机 雾化器 吸痰机 呼吸机 一键通 平安钟 呼叫器
        手环 定位器 买餸车 菜篮车 手拉车 购物车 按摩椅 按摩器 理疗仪 药盒 分药盒 床栏 床边护栏 扶手 防滑垫 防滑条 斜板
    """,
    "school": """
        书包 文具 文具盒 笔盒 铅笔盒 铅笔 钢笔 毛笔 水彩笔 颜色笔 蜡笔 画笔 画板 颜料 练习簿 作业本 课本 教科书
        参考书 辅导书 课外书 字典 词典 计算器 计数机 电脑 手提电脑 笔记本电脑 平板电脑 打印机 书台 书枱 书桌
        台凳 书柜 书架 台灯 护眼灯 校服 钢琴 电子琴 乐器 小提琴 结他 吉他 玩具 积木 绘本
    """,
    "food": """
        大米 食用油 花生油 粮油 面粉 挂面 米粉 河粉 方便面 即食面 公仔面 豉油 酱油 鸡蛋 牛奶 奶粉 饼干 月饼
        粽子 腊肉 猪肉 蔬菜 水果 罐头 营养品 保健品 营养餐 米酒 食物 干粮
    """,
    "electronics": """
        电视 电视机 平板 路由器 电话机 对讲机 摄像头 监控 电饭煲 电风扇 风扇 空调 冰箱
        雪柜 洗衣机 热水器
    """,
    "facilities": """
        路灯 灯柱 灯杆 灯罩 灯胆 灯泡 灯管 楼道灯 声控灯 感应灯 射灯 水管 水喉 下水管 排水管 排污管 去水管 明渠
        暗渠 渠盖 沙井 沙井盖 井盖 盖板 坑渠 水闸 护坡 挡土墙 围墙 围栏 围网 防护网 防护栏 护栏 栏杆
         台阶 梯级 石级 坡道 人行道 斑马线 红绿灯 减速带 路牌 指示牌 路标 反光镜 凸面镜
        广角镜 化粪池 垃圾桶 垃圾箱 垃圾站 垃圾房 垃圾池 垃圾屋 凉亭 长椅 长凳 石凳 座椅 秋千 滑梯 跷跷板
        健身器材 单杠 双杠 扭腰器 漫步机 篮球架 篮板 篮筐 乒乓球台 羽毛球网 地砖 阶砖 瓷砖 石板 麻石 电箱 配电箱
        变电箱 电表 水表 电线杆 信箱 报箱 宣传栏 公告栏 告示板 候车亭 站牌 单车棚 单车架 雨棚 遮阳棚 晾衣架
        消防栓 灭火器 消防通道 电梯 门禁 闭门器 铁闸 大门 屋顶 瓦面 瓦片 水塔 水井 排水泵 抽水泵 防撞柱
        护栏网 充电桩 停车位 车位线 盲道 无障碍通道 健身路径 机耕路
    """,
    "services": """
        探访 探望 陪诊 陪护 陪伴 护工 保姆 钟点工 家政 送餐 送饭 助餐 送药 理发 剪头发 剪发 剪指甲 洗头 洗澡 助浴
        冲凉 打扫卫生 大扫除 补习 功课辅导 心理辅导 心理咨询 康复训练 物理治疗 言语治疗 法律援助 法律咨询 职业培训
        技能培训 就业培训 上门维修 接送 体检 义诊 搬屋 搬家 换煤气 托管 家访 读报纸 填表
    """,
}

#: every thing of every kind, each once, in the order of the kinds above
THINGS: tuple[str, ...] = tuple(dict.fromkeys(w for words in _KINDS.values() for w in words.split()))
