package com.smartpos.sdk

import com.smartpos.sdk.ffi.CardDecision
import com.smartpos.sdk.ffi.CardKernelException
import com.smartpos.sdk.ffi.CardNumber
import com.smartpos.sdk.ffi.CardRefusal
import com.smartpos.sdk.ffi.CertifiedKernel
import com.smartpos.sdk.ffi.CryptogramType
import com.smartpos.sdk.ffi.EntryMode
import com.smartpos.sdk.ffi.HostAnswer
import com.smartpos.sdk.ffi.KernelCard
import com.smartpos.sdk.ffi.KernelFailure
import com.smartpos.sdk.ffi.KernelRequest
import com.smartpos.sdk.ffi.SimulatedKernel
import com.smartpos.sdk.ffi.SmartPosException
import com.smartpos.sdk.ffi.TerminalEvent
import com.smartpos.sdk.ffi.TxnKind
import com.smartpos.sdk.ffi.TxnState
import com.smartpos.sdk.ffi.Verification
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import java.io.File
import java.util.Collections
import java.util.concurrent.atomic.AtomicInteger

/**
 * What an app writes around Sunmi `EMVOptV2` / PAX: a Kotlin `CertifiedKernel`. This one
 * delegates to the test kit's simulated kernel and counts the calls and their threads.
 */
class CountingKernel(private val inner: CertifiedKernel) : CertifiedKernel {
    val reads = AtomicInteger()
    val completions = AtomicInteger()
    val aborts = AtomicInteger()
    val threads: MutableSet<String> = Collections.synchronizedSet(mutableSetOf())
    val requests: MutableList<KernelRequest> = Collections.synchronizedList(mutableListOf())

    private fun seen() = threads.add(File("/proc/thread-self/comm").readText().trim())

    override fun read(request: KernelRequest): KernelCard {
        seen()
        reads.incrementAndGet()
        requests.add(request)
        return inner.read(request)
    }

    override fun complete(answer: HostAnswer): CardDecision {
        seen()
        completions.incrementAndGet()
        return inner.complete(answer)
    }

    override fun abort() {
        seen()
        aborts.incrementAndGet()
        inner.abort()
    }
}

/** Asserts that [e] carries a cashier diagnosis that says the customer was not charged. */
private fun assertNotCharged(e: SmartPosException) {
    val d = requireNotNull(e.diagnosis) { "no diagnosis: $e" }
    assertEquals("not_charged", d.money, "${d.code}")
    assertTrue(d.titleZh.isNotEmpty() && d.titleEn.isNotEmpty(), "${d.code}")
}

/** Sales through the device's certified EMV kernel, reconciled with the host's ledger. */
class CertifiedKernelTest {
    @Test
    fun `an inserted chip card is approved with its TC and AID, which the host receives`() = runBlocking {
        Env().use { env ->
            env.open().use { t ->
                t.signIn("01")
                val recorder = Recorder()
                t.addListener(recorder)
                val sim = SimulatedKernel("unionpay", "chip", "approve")
                val kernel = CountingKernel(sim.asKernel())
                val r = t.saleWithKernel(1_234u, kernel, null, "chip-1", "01")
                assertEquals(TxnKind.SALE, r.record.kind)
                assertEquals(TxnState.APPROVED, r.record.state)
                assertEquals(EntryMode.CHIP, r.entryMode)
                assertEquals("A000000333010101", r.aid)
                assertEquals(16, r.tc?.length, "${r.tc}")
                assertFalse(r.declinedByCard)
                assertEquals(sim.panMasked(), r.record.panMasked)
                // The SDK asked the kernel once, gave it the host's answer once, on its worker thread.
                assertEquals(1, kernel.reads.get())
                assertEquals(1, kernel.completions.get())
                assertEquals(CryptogramType.TC, sim.lastDecision())
                assertTrue(kernel.threads.all { it.startsWith("smartpos-termin") }, "${kernel.threads}")
                val request = kernel.requests.single()
                assertEquals(1_234uL, request.amount)
                assertEquals(4, request.unpredictableNumber.size)
                assertEquals(156.toUShort(), request.currency)
                // "Present card", then "card read" with the masked PAN and the chip entry mode.
                val events = recorder.snapshot()
                val waiting = events.indexOfFirst { it is TerminalEvent.WaitingForCard }
                val read = events.indexOfFirst { it is TerminalEvent.CardRead }
                assertTrue(waiting in 0 until read, "$events")
                val cardRead = events[read] as TerminalEvent.CardRead
                assertEquals(sim.panMasked(), cardRead.panMasked)
                assertTrue(cardRead.entryMode.startsWith("05"), cardRead.entryMode)

                // A pre-authorisation through the same bridge.
                val pre = t.preauthWithKernel(5_000u, SimulatedKernel("visa", "chip").asKernel())
                assertEquals(TxnKind.PRE_AUTH, pre.record.kind)
                assertEquals(TxnState.APPROVED, pre.record.state)
                assertEquals("A0000000031010", pre.aid)

                // The TC uploads go out with the next command; then the host has each sale's TC.
                t.recover()
                val ledger = env.sim.ledger()
                assertEquals(listOf("approved", "approved"), ledger.map { it.status })
                assertEquals(r.tc, ledger[0].tc)
                assertEquals(pre.tc, ledger[1].tc)
                assertEquals(emptyList<String>(), env.sim.reconcile(t, false))
            }
        }
    }

    @Test
    fun `a card that declines after the host approved is reversed and marked declinedByCard`() = runBlocking {
        Env().use { env ->
            env.open().use { t ->
                t.signIn("01")
                val sim = SimulatedKernel("visa", "chip", "decline")
                val r = t.saleWithKernel(1_234u, sim.asKernel(), null, "decline-1", "01")
                assertTrue(r.declinedByCard)
                assertEquals(TxnState.REVERSED, r.record.state)
                assertFalse(r.reversalPending)
                assertNull(r.tc)
                assertEquals(EntryMode.CHIP, r.entryMode)
                assertEquals(CryptogramType.AAC, sim.lastDecision())
                assertEquals(1u, sim.completions())
                // The cashier reads the card's decline, not a plain reversal; the result keeps
                // the host's approval.
                assertEquals("txn.declined_by_card", r.diagnosis?.code)
                assertEquals("not_charged", r.diagnosis?.money)
                assertEquals("00", r.reply?.responseCode)
                // The host approved it, then got the reversal.
                val ledger = env.sim.ledger()
                assertEquals(listOf("reversed"), ledger.map { it.status })
                assertEquals("00", ledger[0].responseCode)
                assertNull(ledger[0].tc)
                assertEquals(emptyList<String>(), env.sim.reconcile(t, false))
            }
        }
    }

    @Test
    fun `a swiped chip card is refused with its diagnosis and nothing is sent`() = runBlocking {
        Env().use { env ->
            env.open().use { t ->
                t.signIn("01")
                val sim = SimulatedKernel("visa", "swipe")
                val e = assertThrows<SmartPosException.CardRefused> {
                    runBlocking { t.saleWithKernel(1_234u, sim.asKernel(), null, "swipe-1", "01") }
                }
                assertEquals(CardRefusal.CHIP_CARD_SWIPED, e.refusal)
                assertTrue(e.reason.contains("insert"), e.reason)
                assertNotCharged(e)
                // The kernel was told to end its transaction; nothing reached the host.
                assertEquals(1u, sim.reads())
                assertEquals(1u, sim.aborts())
                assertEquals(0u, sim.completions())
                assertTrue(env.sim.ledger().isEmpty())
                assertTrue(t.journalAll().isEmpty())
                // Inserted, the same card is accepted.
                sim.present("chip")
                val r = t.saleWithKernel(1_234u, sim.asKernel(), null, "swipe-1-inserted", "01")
                assertEquals(TxnState.APPROVED, r.record.state)
                assertEquals(emptyList<String>(), env.sim.reconcile(t, false))
            }
        }
    }

    @Test
    fun `a chip that cannot be read is not accepted, then the swipe is a fallback and approved`() = runBlocking {
        Env().use { env ->
            env.open().use { t ->
                t.signIn("01")
                val sim = SimulatedKernel("mastercard", "chip", "chip-error")
                val e = assertThrows<SmartPosException.CardKernelFailed> {
                    runBlocking { t.saleWithKernel(1_234u, sim.asKernel(), null, "fallback-chip", "01") }
                }
                assertEquals(KernelFailure.NOT_ACCEPTED, e.failure)
                assertNull(e.kernelCode)
                assertTrue(e.reason.contains("chip unreadable"), e.reason)
                assertNotCharged(e)
                assertTrue(env.sim.ledger().isEmpty())

                sim.present("swipe")
                val r = t.saleWithKernel(1_234u, sim.asKernel(), null, "fallback-swipe", "01")
                assertEquals(TxnState.APPROVED, r.record.state)
                assertEquals(EntryMode.FALLBACK, r.entryMode)
                assertTrue(r.record.entryMode?.startsWith("80") == true, "${r.record.entryMode}")
                assertNull(r.aid)
                assertNull(r.tc)
                assertFalse(r.declinedByCard)
                assertEquals(listOf("approved"), env.sim.ledger().map { it.status })
                assertEquals(emptyList<String>(), env.sim.reconcile(t, false))
            }
        }
    }

    @Test
    fun `a retry with the same idempotency key returns the outcome without calling read again`() = runBlocking {
        Env().use { env ->
            env.open().use { t ->
                t.signIn("01")
                val recorder = Recorder()
                t.addListener(recorder)
                val kernel = CountingKernel(SimulatedKernel("unionpay", "chip").asKernel())
                val first = t.saleWithKernel(1_234u, kernel, null, "order-7", "01")
                assertEquals(TxnState.APPROVED, first.record.state)
                assertFalse(first.replayed)
                val waiting = recorder.snapshot().count { it is TerminalEvent.WaitingForCard }

                val retry = t.saleWithKernel(1_234u, kernel, null, "order-7", "01")
                assertTrue(retry.replayed)
                assertEquals(first.record.reference, retry.record.reference)
                assertEquals(TxnState.APPROVED, retry.record.state)
                assertEquals(EntryMode.CHIP, retry.entryMode)
                assertEquals(1, kernel.reads.get())
                assertEquals(1, kernel.completions.get())
                assertEquals(waiting, recorder.snapshot().count { it is TerminalEvent.WaitingForCard })
                // The same key for another amount is a conflict, still without asking the kernel.
                assertThrows<SmartPosException.IdempotencyConflict> {
                    runBlocking { t.saleWithKernel(999u, kernel, null, "order-7", "01") }
                }
                assertEquals(1, kernel.reads.get())
                assertEquals(1, env.sim.ledger().size)
                assertEquals(emptyList<String>(), env.sim.reconcile(t, false))
            }
        }
    }

    @Test
    fun `an app kernel that throws an undeclared exception gives a typed kernel failure, not a crash`() = runBlocking {
        Env().use { env ->
            env.open().use { t ->
                t.signIn("01")
                val nested = Collections.synchronizedList(mutableListOf<Throwable>())
                // An app's own kernel bridge (no test kit): its vendor SDK blows up in read.
                val crashing = object : CertifiedKernel {
                    override fun read(request: KernelRequest): KernelCard {
                        // Calling the terminal from the kernel is refused at once, not a deadlock.
                        nested.add(runCatching { t.isSignedIn() }.exceptionOrNull())
                        throw IllegalStateException("vendor SDK crashed")
                    }
                    override fun complete(answer: HostAnswer): CardDecision = error("never called")
                    override fun abort() = error("abort throws too")
                }
                val e = assertThrows<SmartPosException.CardKernelFailed> {
                    runBlocking { t.saleWithKernel(1_234u, crashing, null, "crash-1", "01") }
                }
                assertEquals(KernelFailure.KERNEL, e.failure)
                assertEquals(Int.MIN_VALUE, e.kernelCode)
                assertTrue(e.reason.contains("vendor SDK crashed"), e.reason)
                assertNotCharged(e)
                assertTrue(nested.single() is SmartPosException.Busy, "$nested")

                // Declared failures keep their meaning: a vendor code, and a cancellation.
                val declared = object : CertifiedKernel {
                    var next: CardKernelException = CardKernelException.Kernel(-4001, "read card failed")
                    override fun read(request: KernelRequest): KernelCard = throw next
                    override fun complete(answer: HostAnswer): CardDecision = error("never called")
                    override fun abort() {}
                }
                val coded = assertThrows<SmartPosException.CardKernelFailed> {
                    runBlocking { t.saleWithKernel(1_234u, declared) }
                }
                assertEquals(KernelFailure.KERNEL to -4001, coded.failure to coded.kernelCode)
                declared.next = CardKernelException.Aborted()
                assertThrows<SmartPosException.Cancelled> { runBlocking { t.saleWithKernel(1_234u, declared) } }
                assertTrue(env.sim.ledger().isEmpty())

                // The terminal works afterwards, with a kernel that swipes a magnetic-stripe-only
                // card it builds itself (PAN and track 2 stay inside CardNumber).
                val stripe = object : CertifiedKernel {
                    override fun read(request: KernelRequest) = KernelCard(
                        entryMode = EntryMode.SWIPE,
                        card = CardNumber(track2 = "4761739001010010D30121010000000000"),
                        verification = Verification.Signature,
                    )
                    override fun complete(answer: HostAnswer): CardDecision = error("not for a swipe")
                    override fun abort() {}
                }
                val card = stripe.read(sampleRequest())
                assertFalse(card.toString().contains("4761739001010010"), card.toString())
                val r = t.saleWithKernel(1_234u, stripe, null, "stripe-1", "01")
                assertEquals(TxnState.APPROVED, r.record.state)
                assertEquals(EntryMode.SWIPE, r.entryMode)
                assertEquals("476173******0010", r.record.panMasked)
                assertEquals(listOf("approved"), env.sim.ledger().map { it.status })
                assertEquals(emptyList<String>(), env.sim.reconcile(t, false))
            }
        }
    }

    @Test
    fun `a kernel without its own PIN pad lets the SDK ask the PinEntry`() = runBlocking {
        Env().use { env ->
            env.open().use { t ->
                t.signIn("01")
                val sim = SimulatedKernel("unionpay", "chip", "pin")
                val pad = Pad("1234")
                val r = t.saleWithKernel(30_000u, sim.asKernel(), pad, "pin-1", "01")
                assertEquals(TxnState.APPROVED, r.record.state)
                assertEquals(listOf("${sim.panMasked()}/30000"), pad.asked)
                assertTrue(r.record.entryMode?.endsWith("1") == true, "PIN included: ${r.record.entryMode}")
                // Cancelled at the PIN pad: nothing sent, the kernel's transaction ended.
                val cancelled = SimulatedKernel("unionpay", "chip", "pin")
                assertThrows<SmartPosException.Cancelled> {
                    runBlocking { t.saleWithKernel(30_000u, cancelled.asKernel(), Pad(null)) }
                }
                assertEquals(1u, cancelled.aborts())
                assertEquals(1, env.sim.ledger().size)
                assertEquals(emptyList<String>(), env.sim.reconcile(t, false))
            }
        }
    }
}

/** A request for calling a Kotlin kernel directly in a test. */
private fun sampleRequest() = KernelRequest(
    txnType = 0u,
    amount = 1u,
    otherAmount = 0u,
    currency = 156u,
    country = 156u,
    date = "250101",
    time = "101010",
    unpredictableNumber = byteArrayOf(1, 2, 3, 4),
    allowed = emptyList(),
    aids = emptyList(),
)
