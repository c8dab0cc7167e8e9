package com.smartpos.sdk

import com.smartpos.sdk.ffi.AmountRequest
import com.smartpos.sdk.ffi.LoginResult
import com.smartpos.sdk.ffi.OperatorRole
import com.smartpos.sdk.ffi.SmartPosException
import com.smartpos.sdk.ffi.TxnState
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows

/** Operators, the refund policy and the support bundle through the bindings. */
class SafetyTest {
    @Test
    fun `operators log in, change passwords, manage cashiers and get locked out`() {
        Env().use { env ->
            env.open().use { t ->
                assertNull(t.session())
                // The default supervisor password must be changed first.
                assertEquals(LoginResult.MustChangePassword("00"), t.login("00", "123456"))
                val sup = t.changePassword("00", "123456", "246810")
                assertEquals(OperatorRole.SUPERVISOR, sup.role)
                assertEquals("00", t.session()?.operator)
                t.addCashier("02")
                t.logout()
                assertNull(t.session())
                // A cashier cannot manage cashiers.
                assertEquals(LoginResult.MustChangePassword("02"), t.login("02", "0000"))
                assertEquals(OperatorRole.CASHIER, t.changePassword("02", "0000", "1357").role)
                assertThrows<SmartPosException.OperatorRefused> { t.addCashier("03") }
                t.logout()

                // Wrong passwords: each refusal carries a diagnosis, never the password.
                repeat(5) {
                    val e = assertThrows<SmartPosException.OperatorRefused> { t.login("02", "9999") }
                    assertTrue(e.diagnosis != null)
                    assertFalse(e.message.orEmpty().contains("9999"))
                }
                // Locked: even the right password is refused now.
                assertThrows<SmartPosException.OperatorRefused> { t.login("02", "1357") }

                assertTrue(t.login("00", "246810") is LoginResult.LoggedIn)
                t.unlockCashier("02")
                t.logout()
                val back = t.login("02", "1357")
                assertTrue(back is LoginResult.LoggedIn, "$back")
                assertEquals("02", (back as LoginResult.LoggedIn).session.operator)
            }
        }
    }

    @Test
    fun `refunds are checked by the policy, denials list every rule, nothing is sent`() = runBlocking {
        Env().use { env ->
            env.open().use { t ->
                t.signIn("01")
                val sale = t.sale(saleOf(10_000, "order-r"))
                val quote = t.refundQuote(sale.record.reference)
                assertEquals(10_000uL, quote.refundableRemainder)
                assertEquals(emptyList<Any>(), quote.denials)
                assertFalse(quote.needsSupervisor)

                val before = env.sim.ledger().size
                val denied = assertThrows<SmartPosException.RefundDenied> {
                    runBlocking { t.refund(AmountRequest(sale.record.reference, 20_000u, "r-over")) }
                }
                assertEquals(listOf("policy.exceeds_remainder"), denied.denials.map { it.rule })
                val d = denied.denials.single()
                assertTrue(d.detailJson.contains("10000"), d.detailJson)
                assertTrue(d.diagnosis.titleZh.isNotEmpty() && d.diagnosis.titleEn.isNotEmpty())
                assertEquals(before, env.sim.ledger().size)

                // A wrong supervisor password is an operator refusal; nothing is refunded.
                assertThrows<SmartPosException.OperatorRefused> {
                    runBlocking { t.refund(AmountRequest(sale.record.reference, 1_000u), "000000") }
                }

                val ok = t.refund(AmountRequest(sale.record.reference, 3_000u, "r-1"))
                assertTrue(ok.record.state in setOf(TxnState.APPROVED, TxnState.QUEUED))
                assertEquals(7_000uL, t.refundQuote(sale.record.reference).refundableRemainder)
                // Same key again: the recorded refund, not a second one.
                assertTrue(t.refund(AmountRequest(sale.record.reference, 3_000u, "r-1")).replayed)

                val bundle = t.supportBundle()
                assertTrue(bundle.startsWith("{") && bundle.contains("\"transactions\""), bundle.take(200))
                assertTrue(bundle.contains("refund_denied"), "the denial is in the audit log")
                assertFalse(bundle.contains(TEST_PAN), "no clear PAN in the bundle")
            }
        }
    }
}
