package com.smartpos.sample.sdk

import com.smartpos.sample.nfc.NfcState
import com.smartpos.sample.nfc.NfcUnavailableException
import com.smartpos.sample.print.PrintStatus
import com.smartpos.sample.ui.DiagnosisView
import com.smartpos.sample.ui.GatewayException
import com.smartpos.sample.ui.LoginOutcome
import com.smartpos.sample.ui.PaymentGateway
import com.smartpos.sample.ui.PendingView
import com.smartpos.sample.ui.PosEvent
import com.smartpos.sample.ui.PrintOutcome
import com.smartpos.sample.ui.RecoveryView
import com.smartpos.sample.ui.RefundQuote
import com.smartpos.sample.ui.SettlementView
import com.smartpos.sample.ui.SupervisorApproval
import com.smartpos.sample.ui.TxnView
import com.smartpos.sdk.diagnosis
import com.smartpos.sdk.events
import com.smartpos.sdk.ffi.AmountRequest
import com.smartpos.sdk.ffi.ApduTransport
import com.smartpos.sdk.ffi.Diagnosis
import com.smartpos.sdk.ffi.LoginResult
import com.smartpos.sdk.ffi.PinEntry
import com.smartpos.sdk.ffi.PrinterStatus
import com.smartpos.sdk.ffi.ReceiptCopy
import com.smartpos.sdk.ffi.ReceiptPrinter
import com.smartpos.sdk.ffi.ReceiptWidth
import com.smartpos.sdk.ffi.ReferenceRequest
import com.smartpos.sdk.ffi.SmartPosException
import com.smartpos.sdk.ffi.Terminal
import com.smartpos.sdk.ffi.TerminalEvent
import com.smartpos.sdk.ffi.TxnRecord
import com.smartpos.sdk.ffi.TxnResult
import com.smartpos.sdk.ffi.TxnState
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.TimeoutCancellationException
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.map
import kotlinx.coroutines.withContext
import kotlinx.coroutines.withTimeout
import java.io.IOException

/**
 * [PaymentGateway] over the SmartPOS SDK's [Terminal] (Kotlin bindings, `com.smartpos.sdk.ffi`).
 *
 * Everything is the SDK's: operator login and password change (`login`, `changePassword`; the
 * terminal is signed in with `signIn` after the first login), card sales through the device's
 * certified EMV kernel ([VendorKernel], `saleWithKernel`) when it has a ready one, otherwise
 * contactless through the app's [CardSource] (NFC `IsoDep` or the mPOS reader, as an
 * [ApduTransport]), with the app's [PinEntry], the refund quote and the policy-checked refund
 * with the supervisor's password, void, settlement, the journal, pending reversals/advices and
 * their recovery, receipts (`receiptText` for the preview, `print` / `reprintLast` through the
 * app's [ReceiptPrinter]), events and diagnoses.
 *
 * Every [SmartPosException] becomes a [GatewayException] carrying the SDK's diagnosis; a decline
 * is a normal [TxnView] with `approved = false` and its diagnosis. A money command that gets no
 * answer within [callTimeoutMs] on the app's side throws a [GatewayException] with
 * `outcomeUnknown` (the SDK still finishes and journals it): retry it with the same key.
 *
 * @param cards where the card of a contactless sale comes from.
 * @param pinEntry the PIN pad asked when a card wants an online PIN and the device's kernel
 *   has no PIN pad of its own (null: such cards fail).
 * @param printer installed with `setPrinter` (null: `print` reports no printer); an
 *   [EscPosReceiptPrinter] also tells a missing printer permission apart from "busy".
 * @param receiptWidth paper width of the on-screen receipt preview.
 * @param kernel the smart POS's certified EMV kernel, if the app has one for this device: every
 *   sale goes through it while [VendorKernel.isReady] (null: contactless only).
 */
class SdkGateway(
    private val terminal: Terminal,
    private val cards: CardSource,
    private val pinEntry: PinEntry? = null,
    private val printer: ReceiptPrinter? = null,
    private val callTimeoutMs: Long = 120_000,
    private val receiptWidth: ReceiptWidth = ReceiptWidth.W32,
    private val kernel: VendorKernel? = null,
) : PaymentGateway, AutoCloseable {
    @Volatile
    private var operator: String? = null

    /** The kernel of the sale running now, for the cashier's cancel; null when none. */
    @Volatile
    private var kernelInUse: VendorKernel? = null

    init {
        printer?.let { terminal.setPrinter(it) }
    }

    override val events: Flow<PosEvent> = terminal.events().map { it.toPosEvent() }

    override suspend fun login(operator: String, password: String): LoginOutcome {
        val r = sdk { io { terminal.login(operator, password) } }
        return when (r) {
            is LoginResult.LoggedIn -> {
                signedIn(operator)
                LoginOutcome.LOGGED_IN
            }
            is LoginResult.MustChangePassword -> LoginOutcome.MUST_CHANGE_PASSWORD
        }
    }

    override suspend fun changePassword(operator: String, oldPassword: String, newPassword: String) {
        sdk { io { terminal.changePassword(operator, oldPassword, newPassword) } }
        signedIn(operator)
    }

    /** After a login: working keys from the host when the terminal has none yet. */
    private suspend fun signedIn(operator: String) {
        this.operator = operator
        if (!sdk { io { terminal.isSignedIn() } }) sdk { terminal.signIn(operator) }
    }

    /**
     * A sale: through the device's certified kernel while it is ready ([kernelSale]), otherwise
     * contactless. The SDK decides first: a retry of a recorded sale (same checkout, same
     * key) returns its outcome, marked replayed, and a refusal (not signed in, a key used for
     * another amount) comes before any card. Only then does it talk to the card, and the
     * [LazyCardTransport] brings up NFC (or the mPOS reader) at that first APDU; NFC off or
     * missing and no card are shown with the sample's diagnoses, nothing sent.
     */
    override suspend fun sale(amount: Long, idempotencyKey: String): TxnView {
        if (amount <= 0) throw GatewayException("amount must be positive", null)
        kernel?.takeIf { it.isReady() }?.let { return kernelSale(it, amount, idempotencyKey) }
        val card = LazyCardTransport(cards, amount)
        return try {
            money { terminal.saleContactless(amount.toULong(), card, pinEntry, idempotencyKey, operator) }.toView()
        } catch (e: GatewayException) {
            throw card.failure?.let { cardFailure(it) } ?: e
        } finally {
            card.close()
        }
    }

    /**
     * A sale with the card read by the device's certified kernel (insert, tap or swipe; the PIN
     * on its PIN pad, else [pinEntry]). The SDK replays a known key without calling the kernel,
     * applies its acceptance rules (a swiped chip card: `CardRefused`, "insert the card"), gives
     * the host's answer to an inserted card and reverses the approval when the card declines
     * (`declinedByCard`, with its diagnosis). Card errors carry the SDK's diagnoses.
     */
    private suspend fun kernelSale(k: VendorKernel, amount: Long, idempotencyKey: String): TxnView {
        kernelInUse = k
        try {
            val result = money { terminal.saleWithKernel(amount.toULong(), k, pinEntry, idempotencyKey, operator) }
            return result.toView()
        } finally {
            kernelInUse = null
            // The app gave up (no answer in time, cancelled) while the kernel still waits for
            // the card: end that wait, nothing is sent. A card already read is left alone.
            k.cancel()
        }
    }

    /** Stops the wait for the card: the kernel's, or the NFC / reader wait of a contactless sale. */
    override fun cancelCardWait(): Boolean = kernelInUse?.cancel() == true || cards.cancel()

    override suspend fun refundQuote(reference: String): RefundQuote {
        val original = sdk { io { terminal.transaction(reference) } }
            ?: throw GatewayException("no transaction $reference on this terminal", localDiagnosis(NOT_FOUND))
        val q = sdk { io { terminal.refundQuote(reference) } }
        return RefundQuote(
            original = original.toView(null, false, null),
            refundable = q.refundableRemainder.toLong(),
            refusal = q.denials.firstOrNull()?.rule,
            needsSupervisor = q.needsSupervisor,
            denials = q.denials.map { it.diagnosis.toView() },
        )
    }

    override suspend fun refund(
        reference: String,
        amount: Long,
        approval: SupervisorApproval?,
        idempotencyKey: String,
    ): TxnView {
        if (amount <= 0) throw GatewayException("amount must be positive", null)
        val request = AmountRequest(reference, amount.toULong(), idempotencyKey, operator)
        return money { terminal.refund(request, approval?.password) }.toView()
    }

    override suspend fun void(reference: String, idempotencyKey: String): TxnView =
        money { terminal.void(ReferenceRequest(reference, idempotencyKey, operator)) }.toView()

    override suspend fun print(reference: String, customerCopy: Boolean): PrintOutcome =
        outcomeOf(sdk { io { terminal.print(reference, copyOf(customerCopy)) } })

    override suspend fun reprintLast(customerCopy: Boolean): PrintOutcome =
        outcomeOf(sdk { io { terminal.reprintLast(copyOf(customerCopy)) } })

    /** The printer's status for the screens; `BUSY` because a permission is missing says so. */
    private fun outcomeOf(status: PrinterStatus): PrintOutcome {
        val missingPermission = (printer as? EscPosReceiptPrinter)?.lastStatus == PrintStatus.NO_PERMISSION
        return if (status == PrinterStatus.BUSY && missingPermission) PrintOutcome.NO_PERMISSION else status.toOutcome()
    }

    override suspend fun settle(): SettlementView {
        val s = sdk { terminal.settle() }
        return SettlementView(
            s.batch.toLong(), s.balanced, s.debitCount.toLong(), s.debitAmount.toLong(),
            s.creditCount.toLong(), s.creditAmount.toLong(),
        )
    }

    override suspend fun transactions(limit: Int): List<TxnView> {
        val n = limit.coerceIn(0, MAX_LIST).toUInt()
        return sdk { io { terminal.journalRecent(n) } }
            .sortedWith(compareByDescending<TxnRecord> { it.createdAtMs }.thenByDescending { it.reference })
            .map { it.toView(null, terminal.inDoubtOrFalse(it.reference), null) }
    }

    override suspend fun pending(): List<PendingView> =
        sdk { io { terminal.pending() } }.map { PendingView(it.kind, it.reference, it.reasonCode, it.attempts.toLong()) }

    override suspend fun recover(): RecoveryView {
        val r = sdk { terminal.recover() }
        return RecoveryView(r.delivered.toLong(), r.remaining.toLong())
    }

    /** A money command: the SDK's errors mapped, and no answer within [callTimeoutMs] is "unknown". */
    private suspend fun money(call: suspend () -> TxnResult): TxnResult =
        try {
            withTimeout(callTimeoutMs) { sdk { call() } }
        } catch (e: TimeoutCancellationException) {
            throw GatewayException(
                "no answer within $callTimeoutMs ms: the outcome is not known yet",
                localDiagnosis(OUTCOME_UNKNOWN), e, outcomeUnknown = true,
            )
        }

    /**
     * The result as the screens show it, with the SDK's receipt text as the preview; `replayed`
     * (an outcome recorded earlier under the same key) is kept for the result screen.
     */
    private fun TxnResult.toView(): TxnView =
        record.toView(diagnosis?.toView(), reversalPending, receiptOf(record.reference), replayed).copy(
            entryMode = entryMode?.name?.lowercase(),
            aid = aid,
            tc = tc,
            declinedByCard = declinedByCard,
        )

    private fun receiptOf(reference: String): String? =
        try {
            terminal.receiptText(reference, ReceiptCopy.CUSTOMER, receiptWidth)
        } catch (_: SmartPosException) {
            null
        }

    /** Closes the terminal (waits for a running command). */
    override fun close() = terminal.close()

    private fun Terminal.inDoubtOrFalse(reference: String): Boolean =
        try {
            inDoubt(reference)
        } catch (_: SmartPosException) {
            false
        }

    companion object {
        private const val MAX_LIST = 500

        private const val NOT_FOUND = "sample.not_found"
        private const val NFC_OFF = "sample.nfc_off"
        private const val NFC_MISSING = "sample.nfc_missing"
        private const val NO_CARD = "sample.no_card"
        private const val OUTCOME_UNKNOWN = "sample.outcome_unknown"
        private const val NOT_CONFIGURED = "sample.not_configured"

        /** Why no card came, for the screens: NFC off or missing, or no card (nothing sent). */
        private fun cardFailure(e: IOException): GatewayException = when (e) {
            is NfcUnavailableException -> {
                val code = if (e.state == NfcState.DISABLED) NFC_OFF else NFC_MISSING
                GatewayException("NFC not usable: ${e.state}", localDiagnosis(code), e)
            }
            else -> GatewayException("no card: ${e.message}", localDiagnosis(NO_CARD), e)
        }

        private fun copyOf(customer: Boolean) = if (customer) ReceiptCopy.CUSTOMER else ReceiptCopy.MERCHANT

        /** Blocking SDK calls (journal, printer) off the caller's thread. */
        private suspend fun <T> io(call: () -> T): T = withContext(Dispatchers.IO) { call() }

        /** The printer's status for the screens. */
        fun PrinterStatus.toOutcome(): PrintOutcome = when (this) {
            PrinterStatus.OK -> PrintOutcome.PRINTED
            PrinterStatus.OUT_OF_PAPER -> PrintOutcome.OUT_OF_PAPER
            PrinterStatus.OVERHEATED -> PrintOutcome.OVERHEATED
            PrinterStatus.COVER_OPEN -> PrintOutcome.COVER_OPEN
            PrinterStatus.NO_PRINTER -> PrintOutcome.NO_PRINTER
            PrinterStatus.BUSY -> PrintOutcome.BUSY
        }

        /** Runs an SDK call; its errors become [GatewayException]s with the SDK's diagnosis. */
        internal suspend fun <T> sdk(call: suspend () -> T): T =
            try {
                call()
            } catch (e: SmartPosException) {
                throw failure(e)
            }

        /** [e] for the screens: the SDK's diagnosis, or the sample's own where the SDK has none. */
        internal fun failure(e: SmartPosException): GatewayException {
            val d = e.diagnosis?.toView() ?: when (e) {
                is SmartPosException.CardReadFailed, is SmartPosException.Cancelled -> localDiagnosis(NO_CARD)
                is SmartPosException.NotFound -> localDiagnosis(NOT_FOUND)
                is SmartPosException.Config -> localDiagnosis(NOT_CONFIGURED)
                else -> null
            }
            return GatewayException(e.javaClass.simpleName + ": " + (e.message ?: ""), d, e)
        }

        /** The SDK's diagnosis for the screens. */
        fun Diagnosis.toView() = DiagnosisView(
            code, money, titleZh, titleEn, explanationZh, explanationEn, nextStepsZh, nextStepsEn,
        )

        /** Diagnoses for what happens in the app before the SDK is called (no money moved). */
        internal fun localDiagnosis(code: String): DiagnosisView = when (code) {
            NOT_FOUND -> DiagnosisView(
                code, "not_moved", "找不到原交易", "Original not found", "本终端的流水中没有这笔交易。",
                "This terminal's journal has no such transaction.", listOf("核对参考号", "在原终端上办理"),
                listOf("Check the reference", "Use the terminal that took the payment"),
            )
            NFC_OFF -> DiagnosisView(
                code, "not_moved", "NFC 已关闭", "NFC is off", "NFC 已在系统设置中关闭，未读卡，未发起交易。",
                "NFC is switched off in the system settings; no card was read, nothing was sent.",
                listOf("在设置中打开 NFC", "或使用外接读卡器"), listOf("Turn NFC on in Settings", "Or use the card reader"),
            )
            NFC_MISSING -> DiagnosisView(
                code, "not_moved", "本机不支持 NFC", "No NFC on this device", "本机没有 NFC，未读卡，未发起交易。",
                "This device has no NFC controller; no card was read, nothing was sent.",
                listOf("使用外接读卡器"), listOf("Use the Bluetooth card reader"),
            )
            NOT_CONFIGURED -> DiagnosisView(
                code, "not_moved", "终端未配置", "Terminal not set up",
                "终端号、商户号或主机地址未配置或有误，终端无法打开，未发起交易。",
                "The terminal id, merchant id or host address is missing or wrong; the terminal cannot open and nothing was sent.",
                listOf("联系技术支持配置终端", "配置后重新登录"), listOf("Ask support to set up the terminal", "Then log in again"),
            )
            OUTCOME_UNKNOWN -> DiagnosisView(
                code, "unknown", "结果未知", "Outcome not known yet",
                "交易已提交，尚未收到结果。终端会记录结果；重试不会重复扣款。",
                "The command was submitted and its result has not arrived yet. The terminal records it; a retry never charges twice.",
                listOf("点击重试查看结果", "不要换新交易重收"), listOf("Tap Retry to see the outcome", "Do not start a new charge"),
            )
            else -> DiagnosisView(
                code, "not_moved", "读卡失败", "Card not read", "未读到卡片或已取消，未发起交易。",
                "No card was read (or the cardholder cancelled); nothing was sent.",
                listOf("请重新挥卡"), listOf("Tap the card again"),
            )
        }

        /** A terminal event in the screens' terms (no card data beyond the masked PAN). */
        fun TerminalEvent.toPosEvent(): PosEvent = when (this) {
            is TerminalEvent.WaitingForCard -> PosEvent.PresentCard(amount.toLong())
            is TerminalEvent.CardRead -> PosEvent.CardRead(panMasked)
            is TerminalEvent.Sending -> PosEvent.Processing(message)
            is TerminalEvent.ReversalSent -> PosEvent.ReversalSent(reference)
            is TerminalEvent.PendingDelivered -> PosEvent.Other("delivered $kind $reference")
            is TerminalEvent.Ignored -> PosEvent.Other("ignored: $why")
            // Newer SDK versions add event kinds (e.g. `Other`): shown as their name only.
            else -> PosEvent.Other(javaClass.simpleName)
        }

        private fun TxnRecord.toView(
            diagnosis: DiagnosisView?,
            reversalPending: Boolean,
            receipt: String?,
            replayed: Boolean = false,
        ): TxnView = TxnView(
            reference = reference,
            kind = kind.name.lowercase(),
            state = state.name.lowercase(),
            amount = amount.toLong(),
            approved = state == TxnState.APPROVED || state == TxnState.QUEUED,
            rrn = rrn,
            authCode = authCode,
            responseCode = responseCode,
            reversalPending = reversalPending,
            receiptPreview = receipt,
            diagnosis = diagnosis,
            replayed = replayed,
        )
    }
}
