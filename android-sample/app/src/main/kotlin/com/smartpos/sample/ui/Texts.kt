package com.smartpos.sample.ui

import java.util.Locale

/**
 * The screens' strings in Chinese and English. Kept in code rather than `res/values*` so the
 * same sources compile in the Maven JVM verification, which has no resource compiler (aapt).
 */
class Texts(locale: Locale) {
    /** `zh` or `en`. */
    val language: String = if (locale.language == "zh") "zh" else "en"

    private fun t(zh: String, en: String) = if (language == "zh") zh else en

    /** Screen titles and buttons. */
    val login get() = t("操作员登录", "Operator login")
    val operator get() = t("操作员号", "Operator")
    val password get() = t("密码", "Password")
    val amount get() = t("金额（分）", "Amount (cents)")
    val pay get() = t("收款", "Charge")
    val presentCard get() = t("请挥卡", "Present card")
    val processing get() = t("处理中…", "Processing…")
    val approved get() = t("交易成功", "Approved")
    val notApproved get() = t("交易未成功", "Not approved")
    val transactions get() = t("交易记录", "Transactions")
    val refund get() = t("退货", "Refund")
    val void get() = t("撤销", "Void")
    val settle get() = t("结算", "Settle")
    val pending get() = t("待处理冲正/通知", "Pending recovery")
    val recover get() = t("立即发送", "Send now")
    val supervisor get() = t("主管号", "Supervisor")
    val refundable get() = t("可退金额", "Refundable")
    val lookUp get() = t("查询原交易", "Look up original")
    val nextSteps get() = t("下一步：", "Next steps:")
    val back get() = t("返回", "Back")
    val nfcOff get() = t("NFC 已关闭，请在设置中打开", "NFC is off: turn it on in Settings")
    val nfcMissing get() = t("本机不支持 NFC，请使用外接读卡器", "This device has no NFC: use the card reader")
    val cardRemoved get() = t("卡片已移开，请重新挥卡", "Card removed: tap again")
    val newPassword get() = t("新密码", "New password")
    val mustChangePassword get() = t("首次登录，请修改默认密码", "First login: change the default password")
    val retry get() = t("重试（不会重复扣款）", "Retry (never charges twice)")
    val print get() = t("打印小票", "Print receipt")
    val reprint get() = t("重打上一笔", "Reprint last")
    val printer get() = t("打印机", "Printer")
    val printerNoPermission get() = t("未授权使用打印机：请允许“附近的设备”（蓝牙）或 USB 访问，然后重打", "Printer not allowed: grant Nearby devices (Bluetooth) or USB access, then reprint")
    val enterPin get() = t("请输入密码", "Enter PIN")
    val ok get() = t("确定", "OK")
    val cancel get() = t("取消", "Cancel")
    val declinedByCard get() = t("银行批准后卡片芯片拒绝了这笔交易，终端已撤回（冲正）", "The card's chip declined after the bank approved: the terminal reverses the payment")
    val replayed get() = t("这是先前那次尝试的结果（本次未读卡、未发送）", "Result of the earlier attempt (no card read, nothing sent now)")
}
