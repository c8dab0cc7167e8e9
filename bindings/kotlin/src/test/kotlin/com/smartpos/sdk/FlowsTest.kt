package com.smartpos.sdk

import com.smartpos.sdk.ffi.AmountRequest
import com.smartpos.sdk.ffi.ReferenceRequest
import com.smartpos.sdk.ffi.SaleRequest
import com.smartpos.sdk.ffi.SmartPosException
import com.smartpos.sdk.ffi.TxnKind
import com.smartpos.sdk.ffi.TxnState
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNotNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows

/** Every flow through the bindings against the in-process host, reconciled at the end. */
class FlowsTest {
    @Test
    fun `sign-in, sale, void, refund and settlement reconcile with the host`() = runBlocking {
        Env().use { env ->
            env.open().use { t ->
                assertFalse(t.isSignedIn())
                val batch = t.signIn("01")
                assertTrue(t.isSignedIn())
                assertEquals(batch, t.batch())

                val sale = t.sale(saleOf(1234, "order-1"))
                assertEquals(TxnKind.SALE, sale.record.kind)
                assertEquals(TxnState.APPROVED, sale.record.state)
                assertEquals("00", sale.reply?.responseCode)
                assertNotNull(sale.record.rrn)
                assertEquals("622202*********0128", sale.record.panMasked)
                assertFalse(sale.reversalPending)

                val void = t.void(ReferenceRequest(sale.record.reference, "void-1", "01"))
                assertEquals(TxnKind.VOID, void.record.kind)
                assertEquals(TxnState.APPROVED, void.record.state)
                assertEquals(TxnState.VOIDED, t.transaction(sale.record.reference)?.state)

                val sale2 = t.sale(saleOf(10_000, "order-2"))
                val refund = t.refund(AmountRequest(sale2.record.reference, 3_000u, "refund-2", "01"))
                assertEquals(TxnKind.REFUND, refund.record.kind)
                assertTrue(refund.record.state in setOf(TxnState.APPROVED, TxnState.QUEUED))
                assertEquals(sale2.record.reference, refund.record.originalRef)

                val settled = t.settle()
                assertEquals(batch, settled.batch)
                assertTrue(settled.balanced)
                assertEquals(1u, settled.debitCount)
                assertEquals(10_000uL, settled.debitAmount)
                assertEquals(1u, settled.creditCount)
                assertEquals(3_000uL, settled.creditAmount)
                assertEquals(batch + 1u, t.batch())

                assertEquals(emptyList<String>(), env.sim.reconcile(t, false))
                assertEquals(4, t.journalAll().size)
                assertEquals(2, t.journalRecent(2u).size)
                assertEquals(4, t.journalBatch(batch).size)
            }
        }
    }

    @Test
    fun `pre-authorisation, completion and cancellation`() = runBlocking {
        Env().use { env ->
            env.open().use { t ->
                t.signIn("01")
                val pa = t.preauth(saleOf(5_000))
                assertEquals(TxnKind.PRE_AUTH, pa.record.kind)
                assertEquals(TxnState.APPROVED, pa.record.state)
                val done = t.complete(AmountRequest(pa.record.reference, 4_500u))
                assertEquals(TxnKind.COMPLETION, done.record.kind)
                assertEquals(TxnState.APPROVED, done.record.state)
                assertEquals(4_500uL, done.record.amount)

                val pa2 = t.preauth(saleOf(2_000))
                val cancel = t.cancelPreauth(ReferenceRequest(pa2.record.reference))
                assertEquals(TxnKind.PRE_AUTH_CANCEL, cancel.record.kind)
                assertEquals(TxnState.APPROVED, cancel.record.state)
                assertEquals(emptyList<String>(), env.sim.reconcile(t, false))
            }
        }
    }

    @Test
    fun `balance inquiry, echo, decline as a result and sign-off`() = runBlocking {
        Env().use { env ->
            env.open().use { t ->
                t.signIn("01")
                t.echo()
                val bal = t.balance(SaleRequest(amount = 0u, card = testCard()))
                assertEquals(TxnKind.BALANCE, bal.record.kind)
                assertEquals(TxnState.APPROVED, bal.record.state)

                // Amounts ending in 51 are declined by the simulator: a result, not an exception.
                val declined = t.sale(saleOf(2_051))
                assertEquals(TxnState.DECLINED, declined.record.state)
                assertEquals("51", declined.record.responseCode)
                assertFalse(declined.reversalPending)

                t.signOff()
                assertFalse(t.isSignedIn())
                assertThrows<SmartPosException.NotSignedIn> { runBlocking { t.sale(saleOf(100)) } }
                assertEquals(emptyList<String>(), env.sim.reconcile(t, false))
            }
        }
    }
}
