"""Traditional characters read as simplified: a resident who writes 輪椅, 聽力 or 我嫲嫲個雪櫃壞咗 is read with the
same rules and lexicons as one who writes 轮椅; the value a case records is given back as the resident wrote it (the
evaluation gold marks the thing's own name character by character).

A compact table of the traditional characters common in requests — things, kin words, places, the verbs and
particles the reading anchors on — each to its one simplified form, so a text keeps its length and every position
(`surface.Closed.reopen`). Characters outside the table are left as they are. Pure and deterministic.
"""

from __future__ import annotations

# pairs: a traditional character, then its simplified form
_PAIRS = (
    "乾干亂乱來来係系俬私倉仓個个們们備备傢家傷伤僱雇價价儀仪兒儿兩两劉刘動动務务區区厠厕吳吴員员問问啞哑喪丧單单嗎吗嘆叹嘗尝嚐尝嚴严囉啰圍围園园圖图團团堅坚報报場场塊块墊垫墳坟壇坛壓压壞坏壩坝壯壮壺壶夢梦"
    "奪夺奮奋妝妆姪侄婦妇婭娅媽妈嬤嬷嬰婴嬸婶孫孙學学實实寧宁審审寫写寬宽寶宝將将專专尋寻對对導导屆届層层屬属岡冈崗岗嶺岭帥帅帳帐帶带幣币幫帮幹干幾几庫库廁厕廚厨廟庙廠厂廣广廳厅張张彈弹彎弯後后徑径從从復复"
    "徵征恥耻悶闷惡恶愛爱態态慣惯慶庆憂忧應应懷怀戇戆戰战戲戏戶户拋抛掃扫掛挂揀拣換换損损搖摇撥拨擁拥擔担據据擠挤擺摆擾扰攜携敗败敵敌數数斕斓斷断於于時时暈晕曆历曬晒書书會会東东梘枧條条棄弃棟栋楊杨業业極极"
    "榮荣槍枪樁桩樂乐樓楼標标樣样樹树橋桥機机橢椭橫横檔档檢检檯台櫃柜櫈凳櫥橱櫻樱欄栏權权歡欢歲岁歷历殘残殺杀殼壳毀毁氈毡氣气決决沒没沖冲涼凉淚泪淨净淺浅減减測测湧涌湯汤溝沟溫温溼湿滅灭滲渗滷卤滾滚滿满漢汉"
    "漬渍漿浆潑泼潔洁濃浓濕湿瀝沥灑洒灘滩灣湾災灾為为無无煉炼熱热燈灯燒烧燙烫爐炉爛烂爭争爲为爺爷牀床牆墙犧牺獄狱獎奖獨独獸兽現现環环甕瓮產产畢毕畫画異异當当瘓痪瘡疮療疗癢痒癥症癱瘫發发皺皱盞盏盡尽監监盤盘"
    "盧卢眾众睏困確确碼码磚砖礙碍禍祸禮礼穀谷積积穩稳窩窝窮穷竇窦竊窃筆笔範范築筑簡简簾帘籃篮籠笼籤签糞粪糧粮糰团紀纪約约紅红紋纹紗纱紙纸級级細细終终組组結结絕绝絡络給给絨绒統统絲丝綁绑經经綠绿綫线維维網网"
    "綿绵緊紧線线緣缘練练縣县縫缝總总繃绷織织繩绳繪绘繼继續续纜缆罷罢羅罗義义習习聖圣聞闻聯联聲声職职聽听聾聋脫脱腎肾腦脑腫肿腳脚腸肠膚肤膠胶膩腻膽胆臉脸臟脏臥卧臺台與与舉举舊旧艙舱艱艰莊庄莖茎華华萬万葉叶"
    "葯药蒼苍蓆席蓋盖蓮莲蔥葱蕭萧薑姜藉借藍蓝藝艺藥药蘋苹蘿萝處处號号虧亏螢萤蟲虫蟻蚁蠅蝇蠟蜡衆众衛卫衝冲裏里補补裝装裡里製制複复褲裤褸褛襖袄襪袜襯衬見见規规視视親亲覺觉覽览觀观訂订計计訊讯討讨訓训託托記记"
    "訪访設设許许診诊評评試试話话該该詳详誌志認认誤误說说課课調调談谈請请諗谂諮咨諾诺謀谋謊谎講讲謝谢證证識识譚谭護护讀读變变讓让豐丰豬猪貓猫貝贝負负財财貧贫貨货貪贪貴贵買买貸贷費费貼贴資资賠赔賣卖賴赖賺赚"
    "購购贈赠趕赶趙赵跡迹踐践蹺跷車车軍军軟软載载輔辅輕轻輛辆輩辈輪轮轉转辦办辭辞農农這这連连週周進进運运過过達达違违遞递遠远適适遲迟選选遺遗還还邊边郵邮鄉乡鄧邓鄭郑鄰邻醫医醬酱釘钉針针釦扣鈕钮銀银銅铜銹锈"
    "鋁铝鋪铺鋸锯鋼钢錄录錢钱錯错錶表鍊炼鍋锅鍛锻鍵键鍾钟鎖锁鎚锤鎮镇鏈链鏟铲鏡镜鏽锈鐘钟鐲镯鐵铁鑊镬鑰钥鑽钻長长門门閂闩閃闪閉闭開开閑闲閒闲間间閘闸閣阁閱阅闆板關关陝陕陣阵陰阴陳陈陸陆陽阳隊队階阶際际隣邻"
    "隨随險险隱隐隻只雖虽雙双雜杂雞鸡離离難难雲云電电霧雾靈灵靚靓靜静鞦秋韆千響响頁页頂顶項项順顺須须預预領领頭头頸颈頻频顆颗題题顏颜願愿類类顧顾顯显風风飛飞飯饭飲饮飽饱飾饰餅饼養养餓饿餘余館馆餵喂饑饥馬马"
    "馮冯駕驾駛驶驗验驚惊骯肮髒脏體体髮发鬆松鬍胡鬚须鬥斗鬧闹魚鱼魯鲁鮮鲜鳥鸟鳳凤鴨鸭鴿鸽鵝鹅鹵卤鹹咸鹼碱鹽盐麗丽麥麦麪面麵面麼么黃黄點点黨党黴霉齊齐齒齿齡龄龍龙龜龟"
)
_TABLE = str.maketrans(dict(zip(_PAIRS[0::2], _PAIRS[1::2], strict=True)))


def simplified(text: str) -> str:
    """`text` with the table's traditional characters in their simplified form (same length)."""
    return text.translate(_TABLE)
