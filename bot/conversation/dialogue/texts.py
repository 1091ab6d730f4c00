"""What the bot says: short, warm, plain Chinese for older readers. No English, no error codes.

Every prompt that asks the resident to write something also says a voice message works."""

from datetime import datetime, timedelta, timezone

_CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")
_WEEKDAY = "一二三四五六日"


def link(url: str, label: str = "点这里查看") -> str:
    """A short link in a chat reply: WeChat shows `<a href>` in text messages as tappable text."""
    return f'<a href="{url}">{label}</a>'


def when(at: datetime) -> str:
    """ "12月7日（周一）18:00" in China time."""
    local = at.astimezone(_CHINA)
    return f"{local.month}月{local.day}日（周{_WEEKDAY[local.weekday()]}）{local:%H:%M}"


KIND_LABEL = {"micro_wish": "微心愿", "micro_project": "微实事"}

WELCOME = (
    "您好，欢迎关注民生大莞家！我是大莞家助手。\n"
    "家里有困难、小区有小问题，直接打字或发语音告诉我就行，比如：\n"
    "· 我爸行动不便，想要一辆轮椅，住厚街\n"
    "· 我们村口的路灯坏了好几天\n"
    "回复“查询进度”可以看办理情况。"
)
GUIDE = (
    "大莞家可以帮您：\n"
    "1 微心愿：个人或家庭的小困难，比如轮椅、助听器、学习用品、米面油、上门探访\n"
    "2 微实事：社区里的小事，比如路灯坏了、下水道堵了、楼梯要装扶手\n"
    "直接说出您的需要和所在镇街就可以，打字或发语音都行。回复“查询进度”看办理情况，“取消”可以撤回申请。\n"
    "想找工作人员，回复“人工”。"
)
MENU_CHOICES = (
    ("micro_wish", "申请微心愿（个人或家庭的困难）"),
    ("micro_project", "反映微实事（社区里的小问题）"),
    ("query_progress", "查询办理进度"),
    ("cancel_request", "取消我的申请"),
    ("offer_help", "我想献爱心、当志愿者"),
    ("ask_help", "了解大莞家能做什么"),
)


def menu(prefix: str = "不好意思，我没完全明白您的意思。") -> str:
    lines = [prefix, "请回复数字选择（也可以直接打字或发语音说）："]
    lines += [f"{i} {label}" for i, (_, label) in enumerate(MENU_CHOICES, 1)]
    return "\n".join(lines)


PRIVACY = (
    "登记前先跟您说明一下：为了办理您的诉求，我们会记录您说的情况、所在镇街和联系电话，"
    "只给负责办理的工作人员看，办结后按规定保存和删除，不会用作其他用途。\n"
    "同意请回复“同意”，不同意请回复“不同意”。"
)
PRIVACY_REFUSED = "好的，没有您的同意我们不会登记任何信息。以后有需要随时找我。"
PRIVACY_AGAIN = "请回复“同意”或“不同意”。同意后我们才能帮您登记。"
ASK_KIND = "请问这是您或家人的个人困难（回复1 微心愿），还是社区里的公共小问题（回复2 微实事）？"
ASK_WHAT = "请说说具体需要什么帮助，或者哪里出了问题？打字或发语音都行。"
ASK_TOWN = "请问您住在哪个镇街？比如：厚街、虎门、长安、南城（打字或发语音都行）。"
ASK_TOWN_AGAIN = "没认出这个镇街，请直接说镇街名字，比如“厚街”“樟木头”“松山湖”，发语音也行。"
TOOK_ASK_TOWN = "好的，记下了。还要请问您住在哪个镇街？比如“厚街”“樟木头”“松山湖”，打字或发语音都行。"
ASK_PHONE = "方便留个联系电话吗？工作人员可能需要和您核实。直接打数字或者说出来都行；不方便留请回复“不用”。"
ASK_FIX = "请直接告诉我哪里需要改，比如“不对，是厚街不是虎门”（打字或发语音都行）；没问题请回复“确认”。"
DRAFT_CANCELLED = "好的，这次的申请已经取消，没有提交。有需要随时再找我。"
DRAFT_EXPIRED = "您上次没说完的申请已经过了很久，我先作废了。"
VOICE_EMPTY = "不好意思，这段语音我没听清。麻烦您打字告诉我，或者再说一次，说慢一点。"
OUT_OF_SCOPE = (
    "这个问题不在大莞家的办理范围内。社保、公积金、居住证、噪音投诉等可以拨打12345热线咨询。\n"
    "如果您或家人有生活上的困难，或者社区里有路灯、下水道之类的小问题，可以告诉我。"
)
OFFER_HELP = (
    "谢谢您的爱心！我们已经记下您的意愿，镇街工作人员会联系您，把您加入“爱心资源库”。\n"
    "加入后有合适的微心愿，我们会在微信里通知您，您可以选择接受或婉拒。"
)
NO_CASES = "您还没有提交过诉求。直接告诉我您的需要就可以申请，打字或发语音都行。"
#: the same, asked in the middle of an application (the one being filled in is not yet a case)
NO_CASES_YET = "您还没有已提交的诉求。正在登记的这一件，确认提交后就能查询进度。"
CASE_NOT_FOUND = "没有找到您名下的这个编号。请核对编号，或回复“查询进度”看您的全部诉求。"
NOTHING_TO_CANCEL = "您目前没有可以取消的诉求。"
CANCEL_KEPT = "好的，诉求继续办理，不取消。"
FEEDBACK_THANKS = "谢谢您的评价，我们已经记下了，会转给工作人员。"
FEEDBACK_NO_CASE = "谢谢您的反馈，我们会转给工作人员。有需要随时找我，打字或发语音都行。"
ANSWER_FORWARDED = "收到，您的回复已经转给办理{case_no}的工作人员。"
IMAGE_DRAFT = "照片收到了，会附在这次的申请里。"
IMAGE_CASE = "照片收到了，已附到您的诉求{case_no}，工作人员会看到。"
IMAGE_NONE = "照片收到了。请再打字或发语音说说需要什么帮助，我来帮您登记。"
UNSUPPORTED = "收到啦。目前我只能看懂文字和语音，有需要请直接打字或说话告诉我。"
DEGRADED_NOTE = "（系统正在维护，我先记下了，工作人员会再核对。）"
GREETING = (
    "您好！我是大莞家助手，很高兴为您服务。\n"
    "家里有困难（比如需要轮椅、助听器、米面油），或者社区里有小问题（路灯坏了、下水道堵了），"
    "直接打字或发语音告诉我就行。\n回复“查询进度”可以看办理情况，回复“人工”可以找工作人员。"
)
THANKS_BACK = "不客气！能帮上忙就好。以后有需要随时找我，打字或发语音都行。"
MENU_RANGE = "只有1到6这几个选项。"
MENU_ASK = "您好，请问您需要什么帮助？"
NOTHING_MORE = "好的，有需要随时找我，打字或发语音都行。"
NOTHING_MORE_CASE = "\n如果是想撤回已经提交的申请，请回复“取消申请”。"
VOICE_HINT = (
    "没关系，不用打字：点输入框左边的小话筒，按住“按住 说话”把事情讲出来，讲完松手就发给我了。"
    "我会把语音转成文字帮您登记。"
)
OFFICE_LINE = "找工作人员可以打{label}：{phone}（{hours}）。"
CALLBACK_ASK_PHONE = (
    "也可以请工作人员给您回电：请回复您的电话号码（打数字或者直接说出来都行）；不需要回电请回复“不用”。"
)
CALLBACK_BOOKED = "已请工作人员给您回电（{phone}），最晚{due}前会打给您，请留意接听。"
CALLBACK_IN_DRAFT = "您正在填的申请还在，接着回答上面的问题就行；留下电话的话，工作人员也会打给您。"
CALLBACK_DECLINED = "好的，不安排回电。有需要随时找我，打字或发语音都行。"
DRAFT_CANCEL_ASK = "确定不申请“{what}”了吗？回复“是”就不提交了；回复“继续”接着登记。"
DRAFT_KEPT = "好的，接着登记。"
