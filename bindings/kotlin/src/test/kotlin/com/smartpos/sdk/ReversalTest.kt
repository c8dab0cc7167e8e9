package com.smartpos.sdk

import com.smartpos.sdk.ffi.SmartPosException
import com.smartpos.sdk.ffi.TerminalEvent
import com.smartpos.sdk.ffi.TxnState
import com.smartpos.sdk.ffi.testSecureStore
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows

/** Timeouts, reversals and recovery, including after reopening the terminal. */
class ReversalTest {
    @Test
    fun `a lost answer times out and the sale is reversed`() = runBlocking {
        Env().use { env ->
            env.open(responseTimeoutMs = 800).use { t ->
                val rec = Recorder()
                t.addListener(rec)
                t.signIn("01")
                env.sim.dropNextAnswers(1u)
                val sale = t.sale(saleOf(5_500, "order-timeout"))
                assertEquals(TxnState.REVERSED, sale.record.state)
                assertFalse(sale.reversalPending)
                val reversal = rec.snapshot().filterIsInstance<TerminalEvent.ReversalSent>()
                assertEquals(listOf("98"), reversal.map { it.reasonCode })
                assertEquals(sale.record.reference, reversal.single().reference)
                // The host approved, then took the reversal: no money moved.
                assertEquals("reversed", env.sim.ledger().single { it.stan == sale.record.stan }.status)
                assertEquals(emptyList<String>(), env.sim.reconcile(t, false))
                assertTrue(t.pending().isEmpty())
            }
        }
    }

    @Test
    fun `an unreachable host keeps the reversal pending until recover`() = runBlocking {
        Env().use { env ->
            env.open(responseTimeoutMs = 500).use { t ->
                t.signIn("01")
                env.sim.setFaultPlan("drop")
                val sale = t.sale(saleOf(2_500, "order-mute"))
                assertTrue(sale.reversalPending)
                assertEquals(TxnState.REVERSING, sale.record.state)
                assertTrue(t.inDoubt(sale.record.reference))
                assertEquals(1, t.pending().count { it.kind == "reversal" && it.armed })
                // No new money moves while the reversal is undelivered.
                assertThrows<SmartPosException.PendingUndelivered> {
                    runBlocking { t.sale(saleOf(100, "order-next")) }
                }
                assertTrue(env.sim.reconcile(t, true).isEmpty())

                env.sim.setFaultPlan(null)
                val r = t.recover()
                assertEquals(0u, r.remaining)
                assertTrue(r.delivered >= 1u)
                assertTrue(t.pending().isEmpty())
                assertFalse(t.inDoubt(sale.record.reference))
                assertEquals(TxnState.REVERSED, t.transaction(sale.record.reference)?.state)
                assertEquals(emptyList<String>(), env.sim.reconcile(t, false))
            }
        }
    }

    @Test
    fun `recovery after reopening the terminal delivers the pending reversal`() = runBlocking {
        Env().use { env ->
            // The same store on reopen: it holds the journal key that seals pending messages.
            val store = testSecureStore()
            val reference = env.open(responseTimeoutMs = 500, store = store).use { t ->
                t.signIn("01")
                env.sim.setFaultPlan("drop")
                val sale = t.sale(saleOf(3_300, "order-reopen"))
                assertTrue(sale.reversalPending)
                sale.record.reference
            }
            env.sim.setFaultPlan(null)
            env.open(responseTimeoutMs = 2_000, store = store).use { t ->
                val pending = t.pending()
                assertEquals(listOf(reference), pending.map { it.reference })
                assertEquals("98", pending.single().reasonCode)
                assertEquals(TxnState.REVERSING, t.transaction(reference)?.state)
                val r = t.recover()
                assertEquals(0u, r.remaining)
                assertTrue(t.pending().isEmpty())
                assertEquals(TxnState.REVERSED, t.transaction(reference)?.state)
                assertEquals(emptyList<String>(), env.sim.reconcile(t, false))
                // The recorded outcome is still found by its idempotency key.
                assertEquals(reference, t.transactionByKey("order-reopen")?.reference)
            }
        }
    }

    @Test
    fun `the supervisor ends a reversal the host keeps refusing and sales go out again`() = runBlocking {
        Env().use { env ->
            env.open(responseTimeoutMs = 500).use { t ->
                t.signIn("01")
                t.changePassword("00", "123456", "246810")
                t.logout()
                env.sim.setFaultPlan("drop")
                val sale = t.sale(saleOf(2_700, "order-stuck"))
                assertTrue(sale.reversalPending)
                val ref = sale.record.reference
                assertThrows<SmartPosException.PendingUndelivered> {
                    runBlocking { t.sale(saleOf(100, "order-blocked")) }
                }
                // A wrong supervisor password is refused; the reversal stays pending.
                assertThrows<SmartPosException.OperatorRefused> {
                    t.resolveReversal(ref, "000000", "ACQ-77")
                }
                assertEquals(1, t.pending().size)
                // No pending reversal under that reference: a clear error.
                assertThrows<SmartPosException.Rejected> {
                    t.resolveReversal("000000000000", "246810", "ACQ-77")
                }
                val done = t.resolveReversal(ref, "246810", "ACQ-77", "settled by phone")
                assertEquals(TxnState.REVERSAL_RESOLVED, done.state)
                assertTrue(t.pending().isEmpty())
                assertEquals(TxnState.REVERSAL_RESOLVED, t.transaction(ref)?.state)
                assertTrue(t.supportBundle().contains("ACQ-77"))
                env.sim.setFaultPlan(null)
                assertEquals(TxnState.APPROVED, t.sale(saleOf(100, "order-after")).record.state)
            }
        }
    }
}
