package com.smartpos.sample.sdk

import android.nfc.Tag
import android.nfc.tech.IsoDep
import android.os.Bundle
import com.smartpos.sample.nfc.NfcCardReader
import com.smartpos.sample.nfc.NoCardException
import com.smartpos.sample.nfc.NfcUnavailableException
import com.smartpos.sample.nfc.NfcState
import com.smartpos.sample.print.PrintStatus
import com.smartpos.sample.print.ReceiptSink
import com.smartpos.sample.ui.GatewayException
import com.smartpos.sample.ui.LoginOutcome
import com.smartpos.sample.ui.PosEvent
import com.smartpos.sample.ui.PosUiState
import com.smartpos.sample.ui.PosViewModel
import com.smartpos.sample.ui.PrintOutcome
import com.smartpos.sample.ui.Screen
import com.smartpos.sample.ui.SupervisorApproval
import com.smartpos.sdk.ffi.CryptogramType
import com.smartpos.sdk.ffi.HostSimulator
import com.smartpos.sdk.ffi.LoginResult
import com.smartpos.sdk.ffi.SimCardProfile
import com.smartpos.sdk.ffi.SimulatedCard
import com.smartpos.sdk.ffi.SimulatedKernel
import com.smartpos.sdk.ffi.Terminal
import com.smartpos.sdk.ffi.TerminalConfig
import com.smartpos.sdk.ffi.testSecureStore
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.Job
import kotlinx.coroutines.cancelAndJoin
import kotlinx.coroutines.delay
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import org.junit.After
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertNotNull
import org.junit.Assert.assertTrue
import org.junit.Before
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.RobolectricTestRunner
import org.robolectric.annotation.Config
import org.robolectric.annotation.Implementation
import org.robolectric.annotation.Implements
import org.robolectric.shadows.ShadowIsoDep
import org.robolectric.shadows.ShadowLooper
import org.robolectric.util.ReflectionHelpers
import org.robolectric.util.ReflectionHelpers.ClassParameter
import java.io.ByteArrayOutputStream
import java.io.File
import java.nio.file.Files
import java.util.Collections
import java.util.concurrent.atomic.AtomicInteger

/** An `IsoDep` whose card is the testkit's [SimulatedCard]: the NFC controller, virtually. */
@Implements(IsoDep::class)
class SimulatedCardIsoDep : ShadowIsoDep() {
    @Implementation
    override fun transceive(data: ByteArray): ByteArray {
        apdus.incrementAndGet()
        return card?.transceive(data) ?: super.transceive(data)
    }

    companion object {
        /** The card in the field. */
        @JvmStatic
        @Volatile
        var card: SimulatedCard? = null

        /** APDUs relayed to it. */
        @JvmStatic
        val apdus = AtomicInteger()
    }
}

/**
 * The ViewModel driving the real SDK core through [SdkGateway]: the SDK's Kotlin bindings, the
 * Rust terminal and the testkit's host simulator on loopback (TLS, TEST keys). Cards are the
 * testkit's virtual contactless cards behind a real `IsoDep` (Robolectric shadow), read through
 * [NfcCardReader.connect], [com.smartpos.sample.nfc.IsoDepChannel] and [IsoDepApduTransport];
 * on a smart POS, the testkit's certified kernel in the [VendorKernel] slot
 * ([SimulatedVendorKernel]). [taps] counts the NFC card sessions the gateway opened.
 */
@RunWith(RobolectricTestRunner::class)
@Config(shadows = [SimulatedCardIsoDep::class])
class PosViewModelSdkTest {
    private lateinit var sim: HostSimulator
    private lateinit var dir: File
    private lateinit var terminal: Terminal
    private lateinit var gateway: SdkGateway
    /** NFC card sessions the gateway opened (`CardSource.present`), by amount. */
    private val taps = Collections.synchronizedList(mutableListOf<Long>())
    private val printer = RecordingSink()

    /** The receipt printer: records the SDK's ESC/POS bytes. */
    class RecordingSink : ReceiptSink {
        @Volatile
        var status = PrintStatus.PRINTED
        val bytes = ByteArrayOutputStream()
        override val name = "recording"
        override fun isAvailable() = true
        override fun print(escpos: ByteArray): PrintStatus {
            if (status == PrintStatus.PRINTED) synchronized(bytes) { bytes.write(escpos) }
            return status
        }
    }

    private fun isoDepTag(): Tag = ReflectionHelpers.callStaticMethod(
        Tag::class.java,
        "createMockTag",
        ClassParameter.from(ByteArray::class.java, byteArrayOf(0x04, 0x11, 0x22, 0x33)),
        ClassParameter.from(IntArray::class.java, intArrayOf(3)), // TagTechnology.ISO_DEP
        ClassParameter.from(Array<Bundle>::class.java, arrayOf(Bundle())),
        ClassParameter.from(java.lang.Long.TYPE, 0L),
    )

    /** A tap: the card is put in the field and connected through the app's NFC reader. */
    private fun tapping(profile: SimCardProfile): CardSource = CardSource { amount ->
        taps += amount
        SimulatedCardIsoDep.card = SimulatedCard(profile)
        val channel = NfcCardReader(null).connect(isoDepTag()) ?: error("no ISO-DEP")
        CardSession(IsoDepApduTransport(channel)) { channel.close() }
    }

    private fun open(cards: CardSource, callTimeoutMs: Long = 60_000): SdkGateway =
        SdkGateway(terminal, cards, FixedPinEntry("1234"), EscPosReceiptPrinter(printer), callTimeoutMs)

    /** A smart POS: [kernel] in the vendor slot, NFC taps with a Visa card as the other way. */
    private fun withKernel(kernel: VendorKernel): SdkGateway = SdkGateway(
        terminal, tapping(SimCardProfile.Visa), FixedPinEntry("1234"), EscPosReceiptPrinter(printer), kernel = kernel,
    )

    @Before
    fun open() {
        SimulatedCardIsoDep.card = null
        SimulatedCardIsoDep.apdus.set(0)
        sim = HostSimulator()
        val address = sim.start("cup", true, null)
        dir = Files.createTempDirectory("smartpos-sample").toFile()
        val config = TerminalConfig(
            tid = "10000001", mid = "898100012340001", host = address, tls = sim.tlsConfig(),
            connectTimeoutMs = 2_000u, responseTimeoutMs = 2_000u, utcOffsetMinutes = 480,
        )
        terminal = Terminal.open(config, dir.path, testSecureStore(), null)
        // Operators as the back office sets them up: the supervisor changes the default
        // password, adds cashier 01 (default password 0000, changed at the first login).
        assertEquals(LoginResult.MustChangePassword("00"), terminal.login("00", "123456"))
        terminal.changePassword("00", "123456", SUPERVISOR_PASSWORD)
        terminal.addCashier("01")
        terminal.logout()
        gateway = open(tapping(SimCardProfile.Visa))
    }

    @After
    fun close() {
        gateway.close()
        sim.shutdown()
        sim.close()
        dir.deleteRecursively()
    }

    private fun run(vm: PosViewModel, job: Job?): PosUiState {
        assertNotNull("nothing to run", job)
        val end = System.currentTimeMillis() + 20_000
        while (job!!.isActive && System.currentTimeMillis() < end) {
            ShadowLooper.idleMainLooper()
            Thread.sleep(5)
        }
        ShadowLooper.idleMainLooper()
        assertFalse("call did not finish", job.isActive)
        return vm.state.value
    }

    /** A ViewModel whose keys are `prefix-1`, `prefix-2`, ... (distinct per ViewModel). */
    private fun newVm(gw: SdkGateway = gateway, prefix: String = "key"): PosViewModel {
        var n = 0
        return PosViewModel(gw, Dispatchers.IO) { "$prefix-${++n}" }
    }

    private fun loggedIn(vm: PosViewModel) {
        val refused = run(vm, vm.login("01", "bad"))
        assertEquals(Screen.ERROR, refused.screen)
        assertTrue(refused.error!!, refused.error!!.startsWith("OperatorRefused"))
        assertNotNull("the SDK's diagnosis of a refused login", refused.diagnosis)
        assertEquals(Screen.CHANGE_PASSWORD, run(vm, vm.login("01", "0000")).screen)
        assertEquals(Screen.AMOUNT, run(vm, vm.changePassword("0000", "1357")).screen)
        assertTrue(terminal.isSignedIn())
        assertEquals("01", terminal.session()?.operator)
    }

    @Test
    fun contactless_sale_refund_with_supervisor_and_receipt_through_the_real_core() {
        val vm = newVm()
        loggedIn(vm)

        val sale = run(vm, vm.sale(1234))
        assertEquals(Screen.RESULT, sale.screen)
        val txn = sale.lastResult!!
        assertEquals("sale", txn.kind)
        assertEquals("approved", txn.state)
        assertEquals("00", txn.responseCode)
        assertEquals(listOf(1234L), taps)
        assertTrue("APDUs went through IsoDep", SimulatedCardIsoDep.apdus.get() >= 3)
        val record = terminal.transaction(txn.reference)!!
        // Contactless without a PIN block: 072 (issue 20; 071 before).
        assertEquals("072", record.entryMode)
        assertEquals("key-1", record.idempotencyKey)
        // The preview is the SDK's receipt text: masked PAN, 32 columns.
        val receipt = txn.receiptPreview!!
        assertEquals(terminal.receiptText(txn.reference, com.smartpos.sdk.ffi.ReceiptCopy.CUSTOMER, com.smartpos.sdk.ffi.ReceiptWidth.W32), receipt)
        val pan = SimulatedCard(SimCardProfile.Visa).panMasked()
        assertTrue(receipt, receipt.contains(pan.takeLast(4)))
        assertTrue(receipt, receipt.lines().all { it.length <= 32 })
        assertTrue(receipt, receipt.contains("12.34"))

        // Printing goes through EscPosReceiptPrinter; out of paper leaves it pending.
        printer.status = PrintStatus.OUT_OF_PAPER
        assertEquals(PrintOutcome.OUT_OF_PAPER, run(vm, vm.printReceipt()).printStatus)
        assertEquals(listOf(txn.reference), terminal.pendingPrints().map { it.reference })
        // A printer the app may not use (Bluetooth permission missing): said so, not "busy".
        printer.status = PrintStatus.NO_PERMISSION
        assertEquals(PrintOutcome.NO_PERMISSION, run(vm, vm.reprintLast()).printStatus)
        printer.status = PrintStatus.PRINTED
        assertEquals(PrintOutcome.PRINTED, run(vm, vm.reprintLast()).printStatus)
        assertTrue(printer.bytes.size() > 100)

        val quote = run(vm, vm.quoteRefund(txn.reference))
        assertEquals(Screen.REFUND, quote.screen)
        assertEquals(1234L, quote.refundQuote?.refundable)
        assertEquals(null, quote.refundQuote?.refusal)

        // The supervisor's password is checked by the SDK: a wrong one refunds nothing.
        val ledgerBefore = sim.ledger().size
        val badApproval = run(vm, vm.refund(500, SupervisorApproval("00", "000000")))
        assertEquals(Screen.ERROR, badApproval.screen)
        assertTrue(badApproval.error!!, badApproval.error!!.startsWith("OperatorRefused"))
        assertNotNull(badApproval.diagnosis)
        assertEquals(ledgerBefore, sim.ledger().size)

        run(vm, vm.quoteRefund(txn.reference))
        val refund = run(vm, vm.refund(500, SupervisorApproval("00", SUPERVISOR_PASSWORD)))
        assertEquals(Screen.RESULT, refund.screen)
        assertEquals("refund", refund.lastResult?.kind)
        assertTrue(refund.lastResult!!.approved)
        assertEquals(txn.reference, terminal.transaction(refund.lastResult!!.reference)?.originalRef)
        assertTrue(terminal.supportBundle().contains("\"approve\""))

        // The SDK's quote: 1234 - 500 left; more than that is denied by the SDK's policy.
        assertEquals(734L, run(vm, vm.quoteRefund(txn.reference)).refundQuote?.refundable)
        val tooMuch = run(vm, vm.refund(800, null))
        assertEquals(Screen.ERROR, tooMuch.screen)
        assertTrue(tooMuch.error!!, tooMuch.error!!.startsWith("RefundDenied"))
        assertNotNull(tooMuch.diagnosis)

        val list = run(vm, vm.loadTransactions())
        assertEquals(listOf("refund", "sale"), list.transactions.map { it.kind })
        val settled = run(vm, vm.settle()).settlement!!
        assertTrue(settled.balanced)
        assertEquals(1234L, settled.debitAmount)
        assertEquals(500L, settled.creditAmount)
        assertEquals(emptyList<String>(), sim.reconcile(terminal, false))
    }

    @Test
    fun a_refund_retried_after_an_unknown_outcome_reaches_the_host_once() {
        val vm0 = newVm()
        loggedIn(vm0)
        val sale = run(vm0, vm0.sale(3_000)).lastResult!!
        // A gateway that gives up after 300 ms on the app's side; the host's answer is lost, so
        // the SDK waits for its own 2 s response timeout while the app already shows "unknown".
        val impatient = open(tapping(SimCardProfile.Visa), callTimeoutMs = 150)
        val vm = newVm(impatient, "refund")
        run(vm, vm.quoteRefund(sale.reference))
        sim.dropNextAnswers(1u)
        val first = run(vm, vm.refund(1_000, null))
        assertEquals(Screen.ERROR, first.screen)
        assertTrue(first.canRetry)
        assertEquals("sample.outcome_unknown", first.diagnosis?.code)
        assertEquals("unknown", first.diagnosis?.money)

        // The cashier taps Retry until the outcome is known (the SDK finishes the first attempt
        // in the background; while it runs, a retry is still "unknown"). Same key every time.
        var retried = run(vm, vm.retry())
        var attempts = 1
        while (retried.screen == Screen.ERROR && attempts < 30) {
            assertEquals(retried.error, "sample.outcome_unknown", retried.diagnosis?.code)
            assertEquals(mapOf("refund:${sale.reference}:1000" to "refund-1"), vm.openIntents())
            Thread.sleep(200)
            retried = run(vm, vm.retry())
            attempts++
        }
        assertTrue("the second answer came while the first attempt was still running", attempts > 1)
        assertEquals(retried.error, Screen.RESULT, retried.screen)
        val refund = retried.lastResult!!
        assertEquals("refund", refund.kind)
        assertTrue(refund.approved)
        assertTrue(vm.openIntents().isEmpty())
        run(vm, vm.recover())
        val refunds = sim.ledger().filter { it.kind == "refund" }
        assertEquals("$refunds", 1, refunds.size)
        assertEquals(1, terminal.journalAll().count { it.originalRef == sale.reference })
        assertEquals("refund-1", terminal.transaction(refund.reference)?.idempotencyKey)
        assertEquals(emptyList<String>(), sim.reconcile(terminal, false))
    }

    @Test
    fun a_retried_key_is_replayed_and_the_next_customer_s_sale_reads_a_card() {
        val vm = newVm()
        loggedIn(vm)
        val a = run(vm, vm.sale(2_500)).lastResult!!
        assertTrue(a.approved)
        assertFalse(a.replayed)
        // The same key again (what Retry of that checkout sends): the SDK's recorded outcome,
        // marked replayed through SdkGateway; no card is asked for, nothing reaches the host.
        val seen = Collections.synchronizedList(mutableListOf<PosEvent>())
        val collector = CoroutineScope(Dispatchers.IO).launch { gateway.events.collect { seen += it } }
        Thread.sleep(200) // the listener is registered when collection starts
        val again = runBlocking { gateway.sale(2_500, "key-1") }
        assertTrue("the SDK's replayed flag reaches the screens", again.replayed)
        assertEquals(a.reference, again.reference)
        // The SDK answered the key from its journal before asking for a card: the NFC session
        // (reader mode, the tap) was never opened, and nobody was asked to present a card.
        assertEquals("NFC sessions opened", listOf(2_500L), taps)
        assertEquals(1, sim.ledger().size)
        // The same key for another amount is the SDK's conflict, again without NFC.
        val conflict = runCatching { runBlocking { gateway.sale(2_600, "key-1") } }.exceptionOrNull()
        assertTrue("$conflict", conflict is GatewayException && conflict.message!!.startsWith("IdempotencyConflict"))
        assertEquals("NFC sessions opened", listOf(2_500L), taps)
        runBlocking { collector.cancelAndJoin() }
        assertFalse("$seen", seen.any { it is PosEvent.PresentCard })

        // The next customer pays the same amount: a new checkout, a new key, a card is read.
        vm.newSale()
        val b = run(vm, vm.sale(2_500)).lastResult!!
        assertTrue(b.approved)
        assertFalse(b.replayed)
        assertEquals(listOf(2_500L, 2_500L), taps)
        assertTrue(b.reference != a.reference)
        assertEquals("key-2", terminal.transaction(b.reference)?.idempotencyKey)
        assertEquals(2, sim.ledger().size)
        assertEquals(emptyList<String>(), sim.reconcile(terminal, false))
    }

    @Test
    fun a_sale_retried_after_an_unknown_outcome_is_replayed_without_opening_nfc_again() {
        val vm0 = newVm()
        loggedIn(vm0)
        // The app gives up after 150 ms; the host's answer is lost, so the SDK waits for its own
        // 2 s response timeout while the screen already says "unknown, tap Retry".
        val impatient = open(tapping(SimCardProfile.Visa), callTimeoutMs = 150)
        val vm = newVm(impatient, "sale")
        sim.dropNextAnswers(1u)
        val first = run(vm, vm.sale(4_000))
        assertEquals(Screen.ERROR, first.screen)
        assertTrue(first.canRetry)
        assertEquals("sample.outcome_unknown", first.diagnosis?.code)
        assertEquals("NFC sessions opened", listOf(4_000L), taps)

        // Retry (same key) until the outcome is known: every retry is answered by the SDK from
        // its journal (or waits for the first attempt); none of them opens NFC again.
        var retried = run(vm, vm.retry())
        var attempts = 1
        while (retried.screen == Screen.ERROR && attempts < 40) {
            assertEquals(retried.error, "sample.outcome_unknown", retried.diagnosis?.code)
            Thread.sleep(200)
            retried = run(vm, vm.retry())
            attempts++
        }
        assertEquals(retried.error, Screen.RESULT, retried.screen)
        val outcome = retried.lastResult!!
        assertTrue("the recorded outcome, marked replayed", outcome.replayed)
        assertEquals("sale-1", terminal.transaction(outcome.reference)?.idempotencyKey)
        assertEquals("NFC sessions opened", listOf(4_000L), taps)
        assertEquals(1, terminal.journalAll().count { it.idempotencyKey == "sale-1" })
        run(vm, vm.recover())
        assertEquals(emptyList<String>(), sim.reconcile(terminal, false))
    }

    @Test
    fun a_sale_the_sdk_refuses_before_the_card_never_opens_nfc() {
        // Not signed in: the SDK refuses with its diagnosis before it asks for a card, so the
        // gateway never turned reader mode on and nobody was asked to tap.
        val vm = newVm()
        val refused = run(vm, vm.sale(100))
        assertEquals(Screen.ERROR, refused.screen)
        assertNotNull(refused.diagnosis)
        assertEquals("NFC sessions opened", emptyList<Long>(), taps)
        assertEquals(0, SimulatedCardIsoDep.apdus.get())
    }

    @Test
    fun nfc_off_missing_or_no_card_keep_their_diagnoses_and_send_nothing() {
        val vm = newVm()
        loggedIn(vm)
        val off = newVm(open(CardSource { throw NfcUnavailableException(NfcState.DISABLED) }), "off")
        val offState = run(off, off.sale(700))
        assertEquals(Screen.ERROR, offState.screen)
        assertEquals("sample.nfc_off", offState.diagnosis?.code)
        assertTrue(offState.canRetry)
        val none = newVm(open(NfcCardSource(NfcCardReader(null)) { null }), "none")
        val noneState = run(none, none.sale(700))
        assertEquals("sample.nfc_missing", noneState.diagnosis?.code)
        assertEquals("本机不支持 NFC", noneState.diagnosis?.titleZh)
        // No tap in time, or the cashier cancelled "present card": no card, Retry possible.
        val late = newVm(open(CardSource { throw NoCardException("no card within 60000 ms") }), "late")
        val lateState = run(late, late.sale(700))
        assertEquals("sample.no_card", lateState.diagnosis?.code)
        assertTrue(lateState.error!!, lateState.error!!.startsWith("no card"))
        assertTrue(lateState.canRetry)
        assertEquals(0, sim.ledger().size)
        assertTrue(terminal.journalAll().isEmpty())
    }

    @Test
    fun card_failures_decline_and_void_carry_a_diagnosis() {
        val vm = newVm()
        // Not signed in: the SDK refuses with its own diagnosis, no card is asked for.
        val notSignedIn = run(vm, vm.sale(100))
        assertEquals(Screen.ERROR, notSignedIn.screen)
        assertNotNull(notSignedIn.diagnosis)
        loggedIn(vm)

        // The card leaves the field after two APDUs: card read failed, nothing sent. The SDK's
        // CardReadFailed carries its own diagnosis ("present the card again and hold it"),
        // shown instead of the sample's generic "no card".
        val pulled = newVm(open(tapping(SimCardProfile.PulledAway(2u))), "pulled")
        val removed = run(pulled, pulled.sale(700))
        assertEquals(Screen.ERROR, removed.screen)
        assertTrue(removed.error!!, removed.error!!.startsWith("CardReadFailed"))
        assertEquals("card.removed", removed.diagnosis?.code)
        assertEquals("not_charged", removed.diagnosis?.money)
        assertTrue(removed.canRetry)
        assertEquals(0, sim.ledger().size)

        // NFC off or missing, and no card: nfc_off_missing_or_no_card_keep_their_diagnoses_and_send_nothing
        // (NfcCardReaderTest covers how NfcCardReader detects them).

        // A PIN card asks the PIN pad (FixedPinEntry, the simulator's TEST PIN 1234) and is approved.
        val pin = newVm(open(tapping(SimCardProfile.Pin)), "pin")
        assertEquals("approved", run(pin, pin.sale(30_000)).lastResult?.state)

        // The simulator declines amounts ending in 51: a result with a diagnosis, not an error.
        val declined = run(vm, vm.sale(2_051)).lastResult!!
        assertFalse(declined.approved)
        assertEquals("51", declined.responseCode)
        assertTrue(declined.diagnosis!!.titleZh.isNotEmpty())

        vm.newSale()
        val sale = run(vm, vm.sale(3_000)).lastResult!!
        val void = run(vm, vm.void(sale.reference)).lastResult!!
        assertEquals("void", void.kind)
        assertTrue(void.approved)
        val quote = run(vm, vm.quoteRefund(sale.reference)).refundQuote!!
        assertNotNull("a voided sale cannot be refunded", quote.refusal)
        assertTrue(quote.denials.isNotEmpty())

        val missing = run(vm, vm.quoteRefund("999999999999"))
        assertEquals(Screen.ERROR, missing.screen)
        assertNotNull(missing.diagnosis)
        assertTrue(run(vm, vm.loadPending()).pending.isEmpty())
        assertEquals(emptyList<String>(), sim.reconcile(terminal, false))
    }

    // ---- The device's certified EMV kernel (VendorKernel slot, filled with the test kit's) ----

    @Test
    fun a_chip_sale_on_the_device_kernel_shows_its_aid_and_tc_and_never_opens_nfc() {
        val kernel = SimulatedVendorKernel(SimulatedKernel("unionpay", "chip", "approve"))
        val gw = withKernel(kernel)
        val vm = newVm(gw, "chip")
        loggedIn(vm)
        val sale = run(vm, vm.sale(1_234))
        assertEquals(sale.error, Screen.RESULT, sale.screen)
        val txn = sale.lastResult!!
        assertTrue(txn.approved)
        assertEquals("chip", txn.entryMode)
        assertEquals("A000000333010101", txn.aid)
        assertEquals("${txn.tc}", 16, txn.tc?.length)
        assertFalse(txn.declinedByCard)
        assertFalse(txn.replayed)
        assertTrue(txn.receiptPreview!!, txn.receiptPreview!!.contains("CHIP"))
        assertEquals(true, terminal.transaction(txn.reference)?.entryMode?.startsWith("05"))
        // The kernel read the card once and took the host's answer once (TC); NFC stayed off.
        assertEquals(1 to 1, kernel.reads.get() to kernel.completions.get())
        assertEquals(CryptogramType.TC, kernel.sim.lastDecision())
        assertEquals("NFC sessions opened", emptyList<Long>(), taps)

        // The same key again: the recorded outcome, the kernel is not asked.
        val again = runBlocking { gw.sale(1_234, "chip-1") }
        assertTrue(again.replayed)
        assertEquals(txn.reference, again.reference)
        assertEquals(1, kernel.reads.get())

        // The TC goes to the host with the next command.
        run(vm, vm.recover())
        assertEquals(txn.tc, sim.ledger().single().tc)
        assertEquals(emptyList<String>(), sim.reconcile(terminal, false))
    }

    @Test
    fun a_card_that_declines_after_the_host_approved_is_reversed_and_the_cashier_reads_why() {
        val kernel = SimulatedVendorKernel(SimulatedKernel("visa", "chip", "decline"))
        val vm = newVm(withKernel(kernel), "aac")
        loggedIn(vm)
        val s = run(vm, vm.sale(1_234))
        assertEquals(s.error, Screen.RESULT, s.screen)
        val txn = s.lastResult!!
        assertFalse(txn.approved)
        assertTrue(txn.declinedByCard)
        assertEquals("reversed", txn.state)
        assertFalse(txn.reversalPending)
        assertEquals(null, txn.tc)
        assertEquals(CryptogramType.AAC, kernel.sim.lastDecision())
        // The cashier reads that the card declined (the result screen's label, from
        // declinedByCard: PosActivityTest) and where the money stands (the SDK's diagnosis).
        assertEquals("not_charged", s.diagnosis?.money)
        // The cashier reads the card's own decline ("use another payment"), not a plain reversal.
        assertEquals("txn.declined_by_card", s.diagnosis?.code)
        assertTrue("a definite outcome closes the checkout", vm.openIntents().isEmpty())
        assertEquals(listOf("reversed"), sim.ledger().map { it.status })
        assertEquals(emptyList<String>(), sim.reconcile(terminal, false))
    }

    @Test
    fun a_swiped_chip_card_is_refused_with_the_insert_diagnosis_and_approved_when_inserted() {
        val kernel = SimulatedVendorKernel(SimulatedKernel("visa", "swipe"))
        val vm = newVm(withKernel(kernel), "swipe")
        loggedIn(vm)
        val refused = run(vm, vm.sale(1_234))
        assertEquals(Screen.ERROR, refused.screen)
        assertTrue(refused.error!!, refused.error!!.startsWith("CardRefused"))
        assertEquals("card.chip_card_swiped", refused.diagnosis?.code)
        assertTrue(refused.diagnosis!!.titleEn, refused.diagnosis!!.titleEn.contains("insert"))
        assertEquals("not_charged", refused.diagnosis?.money)
        assertTrue(refused.canRetry)
        // The SDK ended the kernel's transaction; nothing reached the host.
        assertEquals(1u, kernel.sim.aborts())
        assertTrue(sim.ledger().isEmpty())

        // The customer inserts the card and the cashier taps Retry (same checkout, same key).
        kernel.sim.present("chip")
        val inserted = run(vm, vm.retry())
        assertEquals(inserted.error, Screen.RESULT, inserted.screen)
        val txn = inserted.lastResult!!
        assertTrue(txn.approved)
        assertFalse(txn.replayed)
        assertEquals("chip", txn.entryMode)
        assertEquals("swipe-1", terminal.transaction(txn.reference)?.idempotencyKey)
        assertEquals(emptyList<String>(), sim.reconcile(terminal, false))
    }

    @Test
    fun a_chip_that_cannot_be_read_is_swiped_as_a_fallback_and_approved() {
        val kernel = SimulatedVendorKernel(SimulatedKernel("mastercard", "chip", "chip-error"))
        val vm = newVm(withKernel(kernel), "fallback")
        loggedIn(vm)
        val failed = run(vm, vm.sale(2_000))
        assertEquals(Screen.ERROR, failed.screen)
        assertTrue(failed.error!!, failed.error!!.startsWith("CardKernelFailed"))
        assertNotNull(failed.diagnosis)
        assertEquals("not_charged", failed.diagnosis?.money)
        assertTrue(sim.ledger().isEmpty())

        kernel.sim.present("swipe")
        val swiped = run(vm, vm.retry())
        assertEquals(swiped.error, Screen.RESULT, swiped.screen)
        val txn = swiped.lastResult!!
        assertTrue(txn.approved)
        assertEquals("fallback", txn.entryMode)
        assertEquals(null, txn.aid)
        assertEquals(null, txn.tc)
        assertEquals(true, terminal.transaction(txn.reference)?.entryMode?.startsWith("80"))
        assertEquals(listOf("approved"), sim.ledger().map { it.status })
        assertEquals(emptyList<String>(), sim.reconcile(terminal, false))
    }

    @Test
    fun without_a_ready_kernel_the_sale_taps_on_nfc_and_the_cashier_can_cancel_the_kernel_s_wait() {
        val kernel = SimulatedVendorKernel(SimulatedKernel("visa", "chip"), ready = false)
        val vm = newVm(withKernel(kernel), "select")
        loggedIn(vm)
        // No kernel (PayLib not bound yet): the NFC controller reads the card, as without one.
        val tapped = run(vm, vm.sale(500)).lastResult!!
        assertTrue(tapped.approved)
        assertEquals("contactless", tapped.entryMode)
        assertEquals(listOf(500L), taps)
        assertEquals(0, kernel.reads.get())

        // The kernel is ready, the customer has no card in yet, and the cashier cancels.
        kernel.ready = true
        kernel.hold = true
        vm.newSale()
        val job = vm.sale(600)
        val end = System.currentTimeMillis() + 10_000
        while (kernel.waiting.get() == 0 && System.currentTimeMillis() < end) {
            ShadowLooper.idleMainLooper()
            Thread.sleep(5)
        }
        assertEquals(1, kernel.waiting.get())
        assertEquals(Screen.PRESENT_CARD, vm.state.value.screen)
        vm.cancelCardWait()
        val cancelled = run(vm, job)
        assertEquals(Screen.ERROR, cancelled.screen)
        assertTrue(cancelled.error!!, cancelled.error!!.startsWith("Cancelled"))
        assertEquals("sample.no_card", cancelled.diagnosis?.code)
        assertTrue(cancelled.canRetry)
        assertTrue("the vendor stopped looking for the card", kernel.ended.get() >= 1)
        assertEquals("NFC is not used while the kernel is there", listOf(500L), taps)

        // The app gives up on the sale (no answer in its time) while the kernel still waits for
        // the card: the gateway ends that wait too, so the sale cannot go on unseen.
        val ended = kernel.ended.get()
        val impatient = SdkGateway(
            terminal, tapping(SimCardProfile.Visa), FixedPinEntry("1234"), EscPosReceiptPrinter(printer), 300, kernel = kernel,
        )
        val gaveUp = runCatching { runBlocking { impatient.sale(700, "given-up") } }.exceptionOrNull()
        assertTrue("$gaveUp", gaveUp is GatewayException && gaveUp.outcomeUnknown)
        // (well before the kernel's own 10 s step timeout would end it)
        val settled = System.currentTimeMillis() + 3_000
        while (kernel.waiting.get() != 0 && System.currentTimeMillis() < settled) Thread.sleep(5)
        assertEquals(0, kernel.waiting.get())
        assertTrue(kernel.ended.get() > ended)
        assertEquals(null, terminal.transactionByKey("given-up"))
        assertEquals(1, sim.ledger().size)
    }

    @Test
    fun sdk_events_reach_the_screens_with_the_masked_pan_only() = runBlocking {
        val seen = Collections.synchronizedList(mutableListOf<PosEvent>())
        val collector = launch(Dispatchers.IO) { gateway.events.collect { seen += it } }
        delay(200) // the listener is registered when collection starts
        assertEquals(LoginOutcome.MUST_CHANGE_PASSWORD, gateway.login("01", "0000"))
        gateway.changePassword("01", "0000", "1357")
        gateway.sale(4_321, "order-events")
        val end = System.currentTimeMillis() + 5_000
        while (PosEvent.Processing("sale") !in seen && System.currentTimeMillis() < end) delay(20)
        collector.cancelAndJoin()
        val events = synchronized(seen) { seen.toList() }
        // A contactless sale reports present card, card read (masked PAN: the card may go),
        // then processing, in that order.
        val present = events.indexOfFirst { it is PosEvent.PresentCard }
        val read = events.indexOfFirst { it is PosEvent.CardRead }
        val processing = events.indexOf(PosEvent.Processing("sale"))
        assertTrue(events.toString(), present in 0 until read && read < processing)
        assertTrue(events.toString(), (events[read] as PosEvent.CardRead).panMasked!!.contains('*'))
        assertFalse("no clear PAN in any event", Regex("[0-9]{13,}").containsMatchIn(events.toString()))
    }

    private companion object {
        const val SUPERVISOR_PASSWORD = "246810"
    }
}
