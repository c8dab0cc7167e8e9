package com.smartpos.sdk

import com.smartpos.sdk.ffi.CardInput
import com.smartpos.sdk.ffi.CardReader
import com.smartpos.sdk.ffi.CardReaderException
import com.smartpos.sdk.ffi.SaleRequest
import com.smartpos.sdk.ffi.SmartPosException
import com.smartpos.sdk.ffi.TerminalEvent
import com.smartpos.sdk.ffi.TxnState
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitCancellation
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import java.util.concurrent.atomic.AtomicInteger

/** The app's card reader: the sale waits for it, and the wait is cancellable. */
class CardReaderTest {
    @Test
    fun `a sale without card asks the reader`() = runBlocking {
        Env().use { env ->
            val reader = object : CardReader {
                override suspend fun readCard(amount: ULong): CardInput {
                    assertEquals(4_200uL, amount)
                    return CardInput.track2("6222021234567890128D30121010000", "021")
                }
            }
            env.open(reader = reader).use { t ->
                val rec = Recorder()
                t.addListener(rec)
                t.signIn("01")
                val sale = t.sale(SaleRequest(amount = 4_200u, idempotencyKey = "order-tap"))
                assertEquals(TxnState.APPROVED, sale.record.state)
                // The reader said 021, but the sale carries no PIN block: 022 (issue 20).
                assertEquals("022", sale.record.entryMode)
                val events = rec.snapshot()
                val waiting = events.indexOfFirst { it is TerminalEvent.WaitingForCard }
                val read = events.indexOfFirst { it is TerminalEvent.CardRead }
                val sending = events.indexOfFirst { it is TerminalEvent.Sending && it.message == "sale" }
                assertTrue(waiting in 0 until read && read < sending, "$events")
                assertEquals("622202*********0128", (events[read] as TerminalEvent.CardRead).panMasked)
            }
        }
    }

    @Test
    fun `cancelling the coroutine while waiting for the card sends nothing`() = runBlocking {
        Env().use { env ->
            val asked = CompletableDeferred<Unit>()
            val readerCancelled = CompletableDeferred<Unit>()
            val reader = object : CardReader {
                override suspend fun readCard(amount: ULong): CardInput {
                    asked.complete(Unit)
                    try {
                        awaitCancellation()
                    } finally {
                        readerCancelled.complete(Unit)
                    }
                }
            }
            env.open(reader = reader).use { t ->
                t.signIn("01")
                val ledgerBefore = env.sim.ledger()
                val rec = Recorder()
                t.addListener(rec)
                val sale = async(Dispatchers.Default) {
                    t.sale(SaleRequest(amount = 7_700u, idempotencyKey = "order-walked-away"))
                }
                withTimeout(5_000) { asked.await() }
                sale.cancel()
                sale.join()
                assertTrue(sale.isCancelled)
                // The reader's coroutine was cancelled too (uniffi drops the Rust future).
                withTimeout(5_000) { readerCancelled.await() }
                assertTrue(t.journalAll().isEmpty())
                assertEquals(ledgerBefore, env.sim.ledger())
                assertTrue(rec.snapshot().none { it is TerminalEvent.Sending })
                assertTrue(t.pending().isEmpty())
                // The terminal is not stuck: the next sale goes through.
                val next = t.sale(saleOf(1_000, "order-next"))
                assertEquals(TxnState.APPROVED, next.record.state)
            }
        }
    }

    @Test
    fun `reader failures become exceptions and nothing is sent`() = runBlocking {
        Env().use { env ->
            val calls = AtomicInteger()
            val reader = object : CardReader {
                override suspend fun readCard(amount: ULong): CardInput =
                    when (calls.incrementAndGet()) {
                        1 -> throw CardReaderException.Cancelled("customer pressed cancel")
                        2 -> throw CardReaderException.Failed("card pulled away")
                        else -> throw IllegalStateException("NFC adapter off")
                    }
            }
            env.open(reader = reader).use { t ->
                t.signIn("01")
                assertThrows<SmartPosException.Cancelled> {
                    runBlocking { t.sale(SaleRequest(amount = 100u)) }
                }
                assertThrows<SmartPosException.CardReadFailed> {
                    runBlocking { t.sale(SaleRequest(amount = 100u)) }
                }
                val e = assertThrows<SmartPosException.CardReadFailed> {
                    runBlocking { t.sale(SaleRequest(amount = 100u)) }
                }
                assertTrue(e.reason.contains("IllegalStateException"), e.reason)
                assertTrue(t.journalAll().isEmpty())
                assertTrue(env.sim.ledger().isEmpty())
            }
        }
    }

    @Test
    fun `no card and no reader is a configuration error`() = runBlocking {
        Env().use { env ->
            env.open().use { t ->
                t.signIn("01")
                assertThrows<SmartPosException.Config> {
                    runBlocking { t.sale(SaleRequest(amount = 100u)) }
                }
            }
        }
    }
}
