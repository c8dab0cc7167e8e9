package com.smartpos.sdk

import com.smartpos.sdk.ffi.AmountRequest
import com.smartpos.sdk.ffi.LoginResult
import com.smartpos.sdk.ffi.OperatorRole
import com.smartpos.sdk.ffi.PrinterStatus
import com.smartpos.sdk.ffi.ReceiptCopy
import com.smartpos.sdk.ffi.ReceiptSettings
import com.smartpos.sdk.ffi.ReceiptWidth
import com.smartpos.sdk.ffi.RefundFee
import com.smartpos.sdk.ffi.SmartPosException
import com.smartpos.sdk.ffi.TxnState
import com.smartpos.sdk.ffi.serviceDeskUnlockCode
import com.smartpos.sdk.ffi.testSecureStore
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNotEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows

/** Operator/settings calls an app's admin screen needs: settings, cashiers, receipts, unlock. */
class AdminTest {
    @Test
    fun `a supervisor threshold from the settings gates refunds`() = runBlocking {
        Env().use { env ->
            env.open().use { t ->
                t.signIn("01")
                assertEquals(LoginResult.MustChangePassword("00"), t.login("00", "123456"))
                t.changePassword("00", "123456", "246810")
                t.logout()

                // Login is not required on this terminal: the app manages its cashiers itself.
                val before = t.safetySettings()
                assertFalse(before.requireLogin)
                val wanted = before.copy(
                    refundPolicy = before.refundPolicy.copy(
                        supervisorApprovalAbove = 1_000uL,
                        fee = RefundFee.Fixed(0uL),
                    ),
                )
                t.setSafetySettings(wanted)
                assertEquals(wanted, t.safetySettings())

                val sale = t.sale(saleOf(5_000, "order-admin-1"))
                val ref = sale.record.reference
                val quote = t.refundQuote(ref)
                assertTrue(quote.needsSupervisor, "$quote")
                assertEquals(5_000uL, quote.refundableRemainder)

                val ledger = env.sim.ledger().size
                val denied = assertThrows<SmartPosException.RefundDenied> {
                    runBlocking { t.refund(AmountRequest(ref, 2_000u, "ra-1")) }
                }
                assertEquals(listOf("policy.supervisor_required"), denied.denials.map { it.rule })
                assertEquals(ledger, env.sim.ledger().size, "a denied refund is never sent")

                // Under the threshold no supervisor is needed; above it the password approves.
                val small = t.refund(AmountRequest(ref, 1_000u, "ra-2"))
                assertTrue(small.record.state in setOf(TxnState.APPROVED, TxnState.QUEUED), "$small")
                val approved = t.refund(AmountRequest(ref, 2_000u, "ra-3"), "246810")
                assertTrue(approved.record.state in setOf(TxnState.APPROVED, TxnState.QUEUED), "$approved")
                assertEquals(2_000uL, t.refundQuote(ref).refundableRemainder)

                val bundle = t.supportBundle()
                assertTrue(bundle.contains("supervisor_above=1000"), "the change is audited")
            }
        }
    }

    @Test
    fun `only the supervisor changes settings when login is required, deleted cashiers cannot log in`() {
        Env().use { env ->
            env.open().use { t ->
                t.login("00", "123456")
                t.changePassword("00", "123456", "246810")
                t.addCashier("02")
                val start = t.safetySettings()
                t.setSafetySettings(start.copy(requireLogin = true))
                t.logout()

                // Nobody logged in, then a cashier: both refused, nothing changes.
                val shorter = start.copy(
                    requireLogin = true,
                    refundPolicy = start.refundPolicy.copy(maxDaysSinceOriginal = 1u),
                )
                assertThrows<SmartPosException.OperatorRefused> { t.setSafetySettings(shorter) }
                assertEquals(LoginResult.MustChangePassword("02"), t.login("02", "0000"))
                t.changePassword("02", "0000", "1357")
                assertThrows<SmartPosException.OperatorRefused> { t.setSafetySettings(shorter) }
                assertThrows<SmartPosException.OperatorRefused> { t.deleteCashier("02") }
                assertEquals(30u, t.safetySettings().refundPolicy.maxDaysSinceOriginal)
                t.logout()

                assertTrue(t.login("00", "246810") is LoginResult.LoggedIn)
                t.setSafetySettings(shorter)
                assertEquals(1u, t.safetySettings().refundPolicy.maxDaysSinceOriginal)

                // Bad input is a Config error naming the field; nothing changes.
                val cur = t.safetySettings()
                val e1 = assertThrows<SmartPosException.Config> {
                    t.setSafetySettings(cur.copy(operators = cur.operators.copy(pbkdf2Iterations = 1u)))
                }
                assertTrue(e1.reason.contains("operators.pbkdf2_iterations"), e1.reason)
                val e2 = assertThrows<SmartPosException.Config> {
                    t.setSafetySettings(
                        cur.copy(refundPolicy = cur.refundPolicy.copy(fee = RefundFee.Percent(20_000u))),
                    )
                }
                assertTrue(e2.reason.contains("refund_policy.fee.basis_points"), e2.reason)
                assertEquals(cur, t.safetySettings())

                t.deleteCashier("02")
                assertThrows<SmartPosException.OperatorRefused> { t.deleteCashier("02") }
                t.logout()
                assertThrows<SmartPosException.OperatorRefused> { t.login("02", "1357") }

                val bundle = t.supportBundle()
                assertTrue(bundle.contains("\"settings_denied\""), "refusals are audited")
                assertTrue(bundle.contains("\"delete\""), "the deletion is audited")
            }
        }
    }

    @Test
    fun `receipt settings change the merchant name, width and language`() = runBlocking {
        Env().use { env ->
            val store = testSecureStore()
            val wanted = ReceiptSettings(
                merchantName = "Admin Test Shop",
                merchantId = "898100012340001",
                terminalId = "10000001",
                width = ReceiptWidth.W48,
                language = "en",
            )
            env.open(store = store).use { t ->
                t.signIn("01")
                val sale = t.sale(saleOf(1_800, "order-admin-r"))
                val ref = sale.record.reference
                val initial = t.receiptSettings()
                assertEquals("zh", initial.language, "cup terminals print Chinese labels")
                assertEquals(ReceiptWidth.W32, initial.width)

                t.setReceiptSettings(wanted)
                assertEquals(wanted, t.receiptSettings())

                val printer = PaperPrinter(paper = true)
                t.setPrinter(printer)
                assertEquals(PrinterStatus.OK, t.print(ref, ReceiptCopy.CUSTOMER))
                val lines = printer.printed.single().lines
                assertTrue(lines.any { it.contains("Admin Test Shop") }, "$lines")
                assertTrue(lines.maxOf { it.length } in 33..48, "48 columns: $lines")
                assertFalse(lines.any { l -> l.any { it in '\u4e00'..'\u9fff' } }, "English only: $lines")
                // The on-screen text uses the same settings at the width asked for, and leaves
                // them as they were for the next print.
                val text = t.receiptText(ref, ReceiptCopy.CUSTOMER, ReceiptWidth.W32)
                assertTrue(text.contains("Admin Test Shop"), text)
                assertTrue(text.lines().maxOf { it.length } <= 32, text)
                assertEquals(wanted, t.receiptSettings())

                // Validation at the boundary: the field is named, the settings stay.
                val lang = assertThrows<SmartPosException.Config> {
                    t.setReceiptSettings(wanted.copy(language = "fr"))
                }
                assertTrue(lang.reason.contains("receipt.language"), lang.reason)
                val tid = assertThrows<SmartPosException.Config> {
                    t.setReceiptSettings(wanted.copy(terminalId = "1"))
                }
                assertTrue(tid.reason.contains("receipt.terminal_id"), tid.reason)
                assertThrows<SmartPosException.Config> {
                    t.setReceiptSettings(wanted.copy(merchantName = "Shop\u001b@"))
                }
                assertEquals(wanted, t.receiptSettings())
            }
            // Kept in the journal: the next open prints with them.
            env.open(store = store).use { t -> assertEquals(wanted, t.receiptSettings()) }
        }
    }

    @Test
    fun `a locked supervisor is unlocked with the service desk code`() {
        val secret = "TEST unlock secret shared with the service desk".toByteArray()
        Env().use { env ->
            env.open().use { t ->
                t.login("00", "123456")
                t.changePassword("00", "123456", "246810")
                t.logout()
                repeat(5) {
                    assertThrows<SmartPosException.OperatorRefused> { t.login("00", "000000") }
                }
                assertThrows<SmartPosException.OperatorRefused> { t.login("00", "246810") }

                // No challenge yet.
                assertThrows<SmartPosException.Config> { t.unlockSupervisor("12345678", secret) }

                val first = t.supervisorUnlockChallenge()
                assertTrue(first.matches(Regex("[0-9]{8}")), first)
                val right = serviceDeskUnlockCode(secret, "10000001", first)
                assertTrue(right.matches(Regex("[0-9]{8}")), right)
                val wrong = if (right == "00000000") "11111111" else "00000000"
                assertThrows<SmartPosException.OperatorRefused> { t.unlockSupervisor(wrong, secret) }
                // The wrong code used the challenge up: its right code no longer works.
                assertThrows<SmartPosException.Config> { t.unlockSupervisor(right, secret) }
                assertThrows<SmartPosException.OperatorRefused> { t.login("00", "246810") }

                val second = t.supervisorUnlockChallenge()
                val code = serviceDeskUnlockCode(secret, "10000001", second)
                // Another terminal's code does not fit this one.
                assertNotEquals(code, serviceDeskUnlockCode(secret, "10000002", second))
                t.unlockSupervisor(code, secret)
                // Unlocked with the default password and a forced change.
                assertEquals(LoginResult.MustChangePassword("00"), t.login("00", "123456"))
                assertEquals(OperatorRole.SUPERVISOR, t.changePassword("00", "123456", "975310").role)
            }
        }
    }
}
