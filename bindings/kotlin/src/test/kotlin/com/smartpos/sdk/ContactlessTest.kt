package com.smartpos.sdk

import com.smartpos.sdk.ffi.ApduTransport
import com.smartpos.sdk.ffi.CardTransportException
import com.smartpos.sdk.ffi.PinEntry
import com.smartpos.sdk.ffi.PinInput
import com.smartpos.sdk.ffi.SimCardProfile
import com.smartpos.sdk.ffi.SimulatedCard
import com.smartpos.sdk.ffi.SmartPosException
import com.smartpos.sdk.ffi.TerminalEvent
import com.smartpos.sdk.ffi.TxnKind
import com.smartpos.sdk.ffi.TxnState
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import java.io.File
import java.util.Collections
import java.util.IdentityHashMap
import java.util.concurrent.atomic.AtomicInteger

/** An app's NFC transport that relays to a virtual card: "tap a card" on a plain JVM. */
class TapTransport(val card: SimulatedCard) : ApduTransport {
    /** OS names of the threads it was called on (JNA may name attached threads "Thread-N"). */
    val threads: MutableSet<String> = Collections.synchronizedSet(mutableSetOf())
    val apdus = AtomicInteger()
    /** The Java `Thread` objects the calls ran on (JNA makes a new one whenever it attaches). */
    val javaThreads: MutableSet<Thread> = Collections.synchronizedSet(Collections.newSetFromMap(IdentityHashMap()))

    override fun transceive(apdu: ByteArray): ByteArray {
        threads.add(File("/proc/thread-self/comm").readText().trim())
        javaThreads.add(Thread.currentThread())
        apdus.incrementAndGet()
        return card.transceive(apdu)
    }
}

/** A PIN pad that types [digits] (or cancels when null) and remembers what it was shown. */
class Pad(private val digits: String?) : PinEntry {
    val asked: MutableList<String> = Collections.synchronizedList(mutableListOf())

    override fun requestPin(maskedPan: String, amount: ULong): PinInput {
        asked.add("$maskedPan/$amount")
        return if (digits == null) PinInput.cancelled() else PinInput.digits(digits)
    }
}

class ContactlessTest {
    @Test
    fun `tap a virtual card - the card is read on the terminal's worker thread`() = runBlocking {
        Env().use { env ->
            env.open().use { t ->
                t.signIn("01")
                val recorder = Recorder()
                t.addListener(recorder)
                val profiles = listOf(SimCardProfile.Visa, SimCardProfile.Mastercard, SimCardProfile.UnionPay)
                for (profile in profiles) {
                    val card = SimulatedCard(profile)
                    val tap = TapTransport(card)
                    val waitingBefore = recorder.snapshot().count { it is TerminalEvent.WaitingForCard }
                    val eventsBefore = recorder.snapshot().size
                    val r = t.saleContactless(1_500u, tap, null, "tap-$profile", "01")
                    // "Present card" once per tap, and not for the retry below.
                    assertEquals(waitingBefore + 1, recorder.snapshot().count { it is TerminalEvent.WaitingForCard })
                    // Then "card read" (the card may go) with the masked PAN, then processing.
                    val tapEvents = recorder.snapshot().drop(eventsBefore)
                    val waiting = tapEvents.indexOfFirst { it is TerminalEvent.WaitingForCard }
                    val read = tapEvents.indexOfFirst { it is TerminalEvent.CardRead }
                    val sending = tapEvents.indexOfFirst { it is TerminalEvent.Sending }
                    assertTrue(waiting in 0 until read && read < sending, "$tapEvents")
                    assertEquals(card.panMasked(), (tapEvents[read] as TerminalEvent.CardRead).panMasked)
                    // Field 22's third digit: 2, no PIN block (issue 20; 071 before).
                    assertEquals("072", (tapEvents[read] as TerminalEvent.CardRead).entryMode)
                    assertEquals(TxnKind.SALE, r.record.kind)
                    assertEquals(TxnState.APPROVED, r.record.state, "$profile")
                    assertEquals("072", r.record.entryMode)
                    assertEquals(card.panMasked(), r.record.panMasked)
                    assertTrue(tap.apdus.get() >= 3)
                    assertTrue(tap.threads.all { it.startsWith("smartpos-termin") }, "${tap.threads}")
                    // The terminal's thread stays attached to the VM between callbacks (one Java
                    // Thread for every APDU of the tap) instead of JNA attaching it for each.
                    assertEquals(1, tap.javaThreads.size, "${tap.javaThreads}")
                    // A retry with the same key returns the record without touching the card.
                    val before = tap.apdus.get()
                    assertTrue(t.saleContactless(1_500u, tap, null, "tap-$profile", "01").replayed)
                    assertEquals(before, tap.apdus.get())
                    assertEquals(waitingBefore + 1, recorder.snapshot().count { it is TerminalEvent.WaitingForCard })
                    assertEquals(profiles.indexOf(profile) + 1, recorder.snapshot().count { it is TerminalEvent.CardRead })
                }
                val pre = t.preauthContactless(5_000u, TapTransport(SimulatedCard(SimCardProfile.Visa)))
                assertEquals(TxnKind.PRE_AUTH, pre.record.kind)
                assertEquals(TxnState.APPROVED, pre.record.state)
                assertEquals(emptyList<String>(), env.sim.reconcile(t, false))
            }
        }
    }

    @Test
    fun `a PIN card asks the app's PIN pad, cancelling sends nothing`() = runBlocking {
        Env().use { env ->
            env.open().use { t ->
                t.signIn("01")
                val pad = Pad("1234")
                val card = SimulatedCard(SimCardProfile.Pin)
                val r = t.saleContactless(30_000u, TapTransport(card), pad, "pin-1")
                assertEquals(TxnState.APPROVED, r.record.state)
                assertEquals(listOf("${card.panMasked()}/30000"), pad.asked)

                val before = env.sim.ledger().size
                assertThrows<SmartPosException.Cancelled> {
                    runBlocking { t.saleContactless(30_000u, TapTransport(SimulatedCard(SimCardProfile.Pin)), Pad(null)) }
                }
                assertThrows<SmartPosException.CardReadFailed> {
                    runBlocking { t.saleContactless(30_000u, TapTransport(SimulatedCard(SimCardProfile.Pin))) }
                }
                assertEquals(before, env.sim.ledger().size)
            }
        }
    }

    @Test
    fun `a card pulled away or a failing transport sends nothing`() = runBlocking {
        Env().use { env ->
            env.open().use { t ->
                t.signIn("01")
                val pulled = TapTransport(SimulatedCard(SimCardProfile.PulledAway(2u)))
                assertThrows<SmartPosException.CardReadFailed> {
                    runBlocking { t.saleContactless(500u, pulled, null, "pulled") }
                }
                val lost = object : ApduTransport {
                    override fun transceive(apdu: ByteArray): ByteArray =
                        throw CardTransportException.CardRemoved("tag lost")
                }
                assertThrows<SmartPosException.CardReadFailed> { runBlocking { t.saleContactless(500u, lost) } }
                val broken = object : ApduTransport {
                    override fun transceive(apdu: ByteArray): ByteArray = throw IllegalStateException("NFC off")
                }
                assertThrows<SmartPosException.CardReadFailed> { runBlocking { t.saleContactless(500u, broken) } }
                assertEquals(0, env.sim.ledger().size)
                // The terminal still works afterwards.
                val ok = t.saleContactless(500u, TapTransport(SimulatedCard(SimCardProfile.Visa)))
                assertEquals(TxnState.APPROVED, ok.record.state)
            }
        }
    }
}
