package com.smartpos.sdk

import com.smartpos.sdk.ffi.PinInput
import com.smartpos.sdk.ffi.PinEntry
import com.smartpos.sdk.ffi.PrintJob
import com.smartpos.sdk.ffi.PrinterStatus
import com.smartpos.sdk.ffi.ReceiptCopy
import com.smartpos.sdk.ffi.ReceiptPrinter
import com.smartpos.sdk.ffi.ReceiptWidth
import com.smartpos.sdk.ffi.SimCardProfile
import com.smartpos.sdk.ffi.SimulatedCard
import com.smartpos.sdk.ffi.SmartPosException
import com.smartpos.sdk.ffi.Terminal
import com.smartpos.sdk.ffi.TerminalEvent
import com.smartpos.sdk.ffi.TerminalListener
import com.smartpos.sdk.ffi.TxnState
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertTimeoutPreemptively
import java.time.Duration
import java.util.Collections

/** Longer than any call here takes: a call still running then is a deadlock. */
private val DEADLOCK: Duration = Duration.ofSeconds(10)

/**
 * Calls the terminal synchronously (and a `suspend` method through `runBlocking`) from inside
 * an app callback, as app code might; returns what each call gave: "ok" or the exception.
 */
private fun callBack(t: Terminal, reference: String?): Map<String, Any> {
    fun attempt(block: () -> Unit): Any = try {
        block()
        "ok"
    } catch (e: SmartPosException) {
        e
    }
    val got = linkedMapOf<String, Any>()
    got["session"] = attempt { t.session() }
    got["isSignedIn"] = attempt { t.isSignedIn() }
    if (reference != null) {
        got["receiptText"] = attempt { t.receiptText(reference, ReceiptCopy.CUSTOMER, ReceiptWidth.W32) }
    }
    got["echo (runBlocking)"] = attempt { runBlocking { t.echo() } }
    return got
}

/** Every nested call threw [SmartPosException.Busy] naming [callback], with a zh/en diagnosis. */
private fun assertAllBusy(got: Map<String, Any>, callback: String) {
    assertTrue(got.isNotEmpty(), "the callback never ran")
    for ((call, r) in got) {
        assertTrue(r is SmartPosException.Busy, "$call from $callback: $r")
        val busy = r as SmartPosException.Busy
        assertTrue(busy.reason.contains(callback), busy.reason)
        val d = busy.diagnosis
        assertEquals("op.busy", d?.code)
        assertTrue(!d?.titleZh.isNullOrEmpty() && !d?.titleEn.isNullOrEmpty(), "$d")
    }
}

/** A printer that calls the terminal back from `print`, then reports [status]. */
private class CallingPrinter(val status: PrinterStatus) : ReceiptPrinter {
    @Volatile var terminal: Terminal? = null
    val nested: MutableList<Map<String, Any>> = Collections.synchronizedList(mutableListOf())
    val jobs: MutableList<PrintJob> = Collections.synchronizedList(mutableListOf())

    override fun print(job: PrintJob): PrinterStatus {
        terminal?.let { nested.add(callBack(it, job.reference)) }
        jobs.add(job)
        return status
    }
}

/** App callbacks that call the terminal back: refused with `Busy` at once, never a deadlock. */
class ReentryTest {
    @Test
    fun `a printer that calls the terminal gets Busy and print returns`() {
        Env().use { env ->
            // Not `use {}`: if print() deadlocked, close() would wait for the same lock and
            // hang the test run instead of failing it.
            val t = env.open()
            val ref = runBlocking {
                t.signIn("01")
                t.sale(saleOf(1_000, "reentry-print")).record.reference
            }
            val printer = CallingPrinter(PrinterStatus.OK).also { it.terminal = t }
            t.setPrinter(printer)

            val status = assertTimeoutPreemptively(DEADLOCK, "print() deadlocked: the printer called session()") {
                t.print(ref, ReceiptCopy.CUSTOMER)
            }

            assertEquals(PrinterStatus.OK, status)
            assertAllBusy(printer.nested.single(), "ReceiptPrinter.print")
            assertEquals(1, printer.jobs.size)
            // The terminal is not stuck: queries, printing and sales go on.
            assertTrue(t.isSignedIn())
            assertEquals(emptyList<Any>(), t.pendingPrints())
            assertEquals(PrinterStatus.OK, t.reprintLast(ReceiptCopy.MERCHANT))
            val next = runBlocking { t.sale(saleOf(1_100)) }
            assertEquals(TxnState.APPROVED, next.record.state)
            t.close()
        }
    }

    @Test
    fun `a failed print from a calling printer stays pending and reprints`() {
        Env().use { env ->
            val t = env.open()
            val ref = runBlocking {
                t.signIn("01")
                t.sale(saleOf(2_300, "reentry-paper")).record.reference
            }
            val empty = CallingPrinter(PrinterStatus.OUT_OF_PAPER).also { it.terminal = t }
            t.setPrinter(empty)

            val status = assertTimeoutPreemptively(DEADLOCK, "print() deadlocked") {
                t.print(ref, ReceiptCopy.CUSTOMER)
            }

            assertEquals(PrinterStatus.OUT_OF_PAPER, status)
            assertAllBusy(empty.nested.single(), "ReceiptPrinter.print")
            assertEquals(TxnState.APPROVED, t.transaction(ref)?.state)
            val pending = t.pendingPrints().single()
            assertEquals(ref, pending.reference)
            assertEquals("customer", pending.copy)
            assertEquals(1u, pending.attempts)
            assertEquals("out_of_paper", pending.lastStatus)
            assertFalse(empty.jobs.single().reprint)

            val paper = PaperPrinter(paper = true)
            t.setPrinter(paper)
            assertEquals(PrinterStatus.OK, t.reprint(ref, ReceiptCopy.CUSTOMER))
            assertTrue(paper.printed.single().reprint)
            assertEquals(emptyList<Any>(), t.pendingPrints())
            t.close()
        }
    }

    @Test
    fun `a PIN pad that calls the terminal gets Busy and the sale completes`() {
        Env().use { env ->
            val t = env.open()
            runBlocking { t.signIn("01") }
            val nested = Collections.synchronizedList(mutableListOf<Map<String, Any>>())
            val pad = object : PinEntry {
                override fun requestPin(maskedPan: String, amount: ULong): PinInput {
                    nested.add(callBack(t, null))
                    return PinInput.digits("1234") // the simulator's TEST_PIN: it checks the PIN
                }
            }

            val sale = assertTimeoutPreemptively(DEADLOCK, "sale deadlocked: the PIN pad called the terminal") {
                runBlocking {
                    t.saleContactless(30_000u, TapTransport(SimulatedCard(SimCardProfile.Pin)), pad, "reentry-pin")
                }
            }

            assertEquals(TxnState.APPROVED, sale.record.state)
            assertAllBusy(nested.single(), "PinEntry.requestPin")
            assertTrue(t.isSignedIn())
            t.close()
        }
    }

    @Test
    fun `a listener that calls the terminal gets Busy and the sale completes`() {
        Env().use { env ->
            val t = env.open()
            runBlocking { t.signIn("01") }
            val nested = Collections.synchronizedList(mutableListOf<Map<String, Any>>())
            t.addListener(object : TerminalListener {
                override fun onEvent(event: TerminalEvent) {
                    if (event is TerminalEvent.Sending && event.message == "sale") nested.add(callBack(t, null))
                }
            })

            val sale = assertTimeoutPreemptively(DEADLOCK, "sale deadlocked: a listener called the terminal") {
                runBlocking { t.sale(saleOf(1_000, "reentry-listener")) }
            }

            assertEquals(TxnState.APPROVED, sale.record.state)
            assertAllBusy(nested.single(), "TerminalListener.onEvent")
            assertTrue(t.isSignedIn())
            t.close()
        }
    }
}
