"""The demo hospital (仁和医院 / Renhe Hospital).  Fictional people; demo PINs are public."""

from __future__ import annotations

HOSPITAL = {"name_zh": "仁和医院", "name_en": "Renhe Hospital"}

DEPARTMENTS = [
    # code, name_zh, name_en, general clinic fee (cents), general capacity per session
    ("01", "内科", "Internal Medicine", 1000, 30),
    ("02", "外科", "Surgery", 1000, 20),
    ("03", "儿科", "Paediatrics", 1000, 25),
    ("04", "妇产科", "Obstetrics and Gynaecology", 1000, 20),
    ("05", "眼科", "Ophthalmology", 1000, 15),
    ("06", "口腔科", "Stomatology", 1000, 15),
    ("07", "中医科", "Traditional Chinese Medicine", 1000, 15),
]

# number, dept, name_zh, name_en, title_zh, title_en, specialty_zh, specialty_en,
# expert?, rate cents/min, registration fee cents, capacity, weekly sessions
DOCTORS = [
    ("101", "01", "张伟", "Zhang Wei", "主任医师", "Chief Physician",
     "冠心病、高血压的诊治", "coronary heart disease and hypertension",
     True, 200, 5000, 3, ["mon-am", "wed-am", "fri-pm"]),
    ("102", "01", "李娜", "Li Na", "主治医师", "Attending Physician",
     "糖尿病及内分泌疾病", "diabetes and endocrine disorders",
     False, 200, 2000, 10, ["mon-pm", "tue-am", "thu-am", "sat-am"]),
    ("201", "02", "王强", "Wang Qiang", "主任医师", "Chief Surgeon",
     "微创腹腔镜手术", "minimally invasive laparoscopic surgery",
     True, 300, 5000, 3, ["tue-am", "thu-pm"]),
    ("301", "03", "刘芳", "Liu Fang", "副主任医师", "Associate Chief Physician",
     "小儿呼吸道疾病", "children's respiratory diseases",
     True, 200, 3000, 4, ["mon-am", "tue-pm", "thu-am", "sat-am"]),
    ("401", "04", "陈静", "Chen Jing", "主治医师", "Attending Physician",
     "孕期保健与产前检查", "pregnancy care and antenatal checks",
     False, 200, 2000, 8, ["mon-am", "wed-pm", "fri-am"]),
    ("501", "05", "杨光", "Yang Guang", "主任医师", "Chief Physician",
     "白内障与青光眼", "cataract and glaucoma",
     True, 500, 5000, 3, ["wed-am", "fri-am"]),
    ("701", "07", "赵明", "Zhao Ming", "主任医师", "Chief Physician",
     "中医调理慢性病", "traditional treatment of chronic illness",
     True, 200, 4000, 4, ["tue-am", "thu-am", "sat-am"]),
]

# general (department) clinics run Mon-Fri am+pm and Saturday morning
GENERAL_SESSIONS = ["mon-am", "mon-pm", "tue-am", "tue-pm", "wed-am", "wed-pm",
                    "thu-am", "thu-pm", "fri-am", "fri-pm", "sat-am"]

# card, name, phone, birth date, PIN, opening balance (cents)
PATIENTS = [
    ("10000001", "王小明", "13800000001", "1980-05-12", "123456", 50000),
    ("10000002", "李华", "13800000002", "1992-11-03", "246810", 20000),
    ("10000003", "王秀英", "13900000001", "1955-02-28", "135790", 100000),
    ("10000004", "赵磊", "13800000004", "1975-07-19", "111111", 300),
    ("10000005", "孙丽", "13800000005", "2001-01-30", "909090", 0),
    ("10000006", "周杰", "13800000006", "1968-09-09", "555555", 8000),
]

# number, name, linked card (or None), level, note
VIPS = [
    ("13900000001", "王秀英", "10000003", "vip", "长期慢病随访 long-term follow-up"),
    ("13900000002", "钱院士", None, "vvip", "特邀专家顾问 honorary adviser (no card)"),
]

# code, card, name_zh, name_en, days before today, ready, summary_zh, summary_en
EXAMS = [
    ("800001", "10000001", "年度体检", "annual check-up", 3, True,
     "各项指标正常，血脂略偏高，建议低脂饮食并于六个月后复查。",
     "All results normal; cholesterol slightly high. Eat less fat and recheck in six months."),
    ("800002", "10000001", "腹部彩超", "abdominal ultrasound", 1, False, "", ""),
    ("800003", "10000002", "血常规", "full blood count", 2, True,
     "血常规各项指标均在正常范围内。", "Your full blood count is within the normal range."),
]

INFO = {
    "hospital_intro": {
        "zh": "仁和医院是一所集医疗、教学、科研于一体的三级综合医院，开放床位一千二百张，"
              "拥有国家级重点专科三个。医院地址：和平路一百号。门诊时间：周一至周五上午八点至"
              "下午五点，周六上午八点至十二点。",
        "en": "Renhe Hospital is a top-grade general hospital for care, teaching and research, "
              "with 1,200 beds and three national key specialties. Address: 100 Heping Road. "
              "Outpatient hours: Monday to Friday 8 am to 5 pm, Saturday 8 am to noon.",
    },
    "departments": {
        "zh": "本院设有内科、外科、儿科、妇产科、眼科、口腔科和中医科。内科配备心导管室，"
              "眼科配备全套白内障超声乳化设备。",
        "en": "We have Internal Medicine, Surgery, Paediatrics, Obstetrics and Gynaecology, "
              "Ophthalmology, Stomatology and Traditional Chinese Medicine. Internal Medicine "
              "has a cardiac catheter lab; Ophthalmology has full cataract surgery equipment.",
    },
    "doctor_schedules": {
        "zh": "普通门诊周一至周五全天、周六上午开诊。专家门诊时间：张伟主任周一、周三上午及"
              "周五下午；王强主任周二上午及周四下午；刘芳副主任周一上午、周二下午、周四上午及"
              "周六上午；杨光主任周三、周五上午；赵明主任周二、周四、周六上午。",
        "en": "General clinics are open all day Monday to Friday and Saturday morning. Experts: "
              "Dr Zhang Wei Monday and Wednesday mornings and Friday afternoon; Dr Wang Qiang "
              "Tuesday morning and Thursday afternoon; Dr Liu Fang Monday morning, Tuesday "
              "afternoon, Thursday and Saturday mornings; Dr Yang Guang Wednesday and Friday "
              "mornings; Dr Zhao Ming Tuesday, Thursday and Saturday mornings.",
    },
    "famous_experts": {
        "zh": "专家编号一零一，张伟，心内科主任医师，擅长冠心病、高血压。专家编号二零一，"
              "王强，外科主任医师，擅长微创手术。专家编号三零一，刘芳，儿科副主任医师。"
              "专家编号五零一，杨光，眼科主任医师。专家编号七零一，赵明，中医科主任医师。",
        "en": "Expert 101, Dr Zhang Wei, chief cardiologist: coronary disease and hypertension. "
              "Expert 201, Dr Wang Qiang, chief surgeon: minimally invasive surgery. Expert 301, "
              "Dr Liu Fang, paediatrics. Expert 501, Dr Yang Guang, ophthalmology. Expert 701, "
              "Dr Zhao Ming, traditional Chinese medicine.",
    },
    "new_drugs": {
        "zh": "本月重点推荐新药：新型长效降压药，每日一次，平稳控制血压；"
              "新一代口服降糖药，低血糖风险更低。请遵医嘱使用。",
        "en": "New this month: a long-acting blood-pressure tablet taken once a day, and a "
              "new-generation oral diabetes medicine with a lower risk of hypoglycaemia. "
              "Use only as prescribed.",
    },
    "consultation_fees": {
        "zh": "专家电话咨询按通话时间收费，每分钟二元，不足一分钟按一分钟计算，费用从就诊卡"
              "余额中扣除。VIP用户免费。",
        "en": "Expert phone consultation is charged by the minute, 2 yuan per started minute, "
              "from your card balance. Free for VIP members.",
    },
    "registration_rules": {
        "zh": "预约挂号免费，需持有就诊卡。正式挂号需输入卡号和密码，挂号费从卡内扣除。"
              "挂号当日未到院就诊的，系统将自动退号并退还挂号费。",
        "en": "Appointments are free with a patient card. Paid registration needs your card "
              "number and PIN; the fee is taken from your card. If you do not attend on the "
              "day, the registration is cancelled and the fee refunded automatically.",
    },
}

WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
