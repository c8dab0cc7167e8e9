package com.smartpos.sdk

import com.smartpos.sdk.ffi.CardInput
import com.smartpos.sdk.ffi.CardReader
import com.smartpos.sdk.ffi.SaleRequest
import com.smartpos.sdk.ffi.SmartPosException
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import java.util.concurrent.atomic.AtomicInteger

/** The same idempotency key never charges twice. */
class IdempotencyTest {
    @Test
    fun `a retried key returns the recorded outcome and sends nothing`() = runBlocking {
        Env().use { env ->
            val reads = AtomicInteger()
            val reader = object : CardReader {
                override suspend fun readCard(amount: ULong): CardInput {
                    reads.incrementAndGet()
                    return testCard()
                }
            }
            env.open(reader = reader).use { t ->
                t.signIn("01")
                val first = t.sale(SaleRequest(amount = 1_234u, idempotencyKey = "order-42"))
                assertFalse(first.replayed)
                assertEquals(1, reads.get())
                val again = t.sale(SaleRequest(amount = 1_234u, idempotencyKey = "order-42"))
                assertTrue(again.replayed)
                assertEquals(first.record, again.record)
                // A retry does not make the customer tap again.
                assertEquals(1, reads.get())
                assertEquals(1, env.sim.ledger().count { it.kind == "sale" })
                assertEquals(1, t.journalAll().size)

                assertThrows<SmartPosException.IdempotencyConflict> {
                    runBlocking { t.sale(saleOf(999, "order-42")) }
                }
                assertEquals(1, env.sim.ledger().size)
                assertEquals(emptyList<String>(), env.sim.reconcile(t, false))
            }
        }
    }
}
