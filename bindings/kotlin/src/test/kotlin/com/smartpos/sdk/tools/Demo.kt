package com.smartpos.sdk.tools

import com.smartpos.sdk.events
import com.smartpos.sdk.ffi.AmountRequest
import com.smartpos.sdk.ffi.CardInput
import com.smartpos.sdk.ffi.HostSimulator
import com.smartpos.sdk.ffi.ReferenceRequest
import com.smartpos.sdk.ffi.SaleRequest
import com.smartpos.sdk.ffi.Terminal
import com.smartpos.sdk.ffi.TerminalConfig
import com.smartpos.sdk.ffi.TerminalEvent
import com.smartpos.sdk.ffi.TxnResult
import com.smartpos.sdk.ffi.testSecureStore
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import java.nio.file.Files
import kotlin.system.exitProcess

/**
 * The `smartpos demo` session through the Kotlin bindings: the in-process host over TLS
 * (TEST certificate), sign-in, sale, idempotent retry, void, sale + partial refund, a sale
 * whose answer is lost (timeout, automatic reversal), a decline, settlement, reconciliation.
 * Run with `scripts/kotlin.sh demo`.
 */
fun main() {
    val ok = runBlocking { demo() }
    exitProcess(if (ok) 0 else 1)
}

private fun money(minor: ULong) = "%d.%02d".format((minor / 100u).toLong(), (minor % 100u).toLong())

private fun show(r: TxnResult) {
    val rec = r.record
    println(
        "    -> ${rec.reference} ${rec.kind} ${money(rec.amount)} ${rec.state} rrn ${rec.rrn ?: "-"} " +
            "code ${rec.responseCode ?: "-"}" + (if (r.reversalPending) " (reversal pending)" else "") +
            (if (r.replayed) " (replayed, nothing sent)" else ""),
    )
}

private suspend fun demo(): Boolean {
    val dir = Files.createTempDirectory("smartpos-kotlin-demo").toFile()
    HostSimulator().use { sim ->
        val address = sim.start("cup", true, null)
        println("host simulator (cup) listening on $address (TLS, TEST certificate)")
        val config = TerminalConfig(
            tid = "10000001", mid = "898100012340001", host = address, tls = sim.tlsConfig(),
            connectTimeoutMs = 5_000u, responseTimeoutMs = 3_000u, utcOffsetMinutes = 480,
        )
        Terminal.open(config, dir.path, testSecureStore(), null).use { t ->
            val card = { CardInput.keyed("6222021234567890128", "3012") }
            var n = 0
            fun step(text: String) = println("\n=== ${++n}. $text")
            val events = kotlinx.coroutines.CoroutineScope(Dispatchers.Default).launch {
                t.events().collect { e ->
                    when (e) {
                        is TerminalEvent.Sending -> println("  terminal -> host: ${e.mti} ${e.message}")
                        is TerminalEvent.ReversalSent ->
                            println("  ! reversal of ${e.reference} sent (reason ${e.reasonCode}, attempt ${e.attempt})")
                        else -> {}
                    }
                }
            }

            step("sign-in: download PIK/MAK/TDK under the TMK, check values verified")
            println("    -> signed in, batch %06d".format(t.signIn("01").toInt()))

            step("sale of 12.34 (keyed TEST card)")
            val s1 = t.sale(SaleRequest(1234u, "order-1001", "01", card()))
            show(s1)

            step("the app retries order-1001 (same idempotency key): recorded outcome, nothing sent")
            val again = t.sale(SaleRequest(1234u, "order-1001", "01", card()))
            show(again)
            if (!again.replayed || again.record.reference != s1.record.reference) return false

            step("void of that sale")
            show(t.void(ReferenceRequest(s1.record.reference, null, "01")))

            step("sale of 100.00, then a partial refund of 30.00 (advice 0220)")
            val s2 = t.sale(SaleRequest(10_000u, "order-1002", "01", card()))
            show(s2)
            show(t.refund(AmountRequest(s2.record.reference, 3_000u, "refund-1002-1", "01")))

            step("sale of 55.00; the host approves but the answer is lost: timeout, automatic reversal (98)")
            sim.dropNextAnswers(1u)
            show(t.sale(SaleRequest(5_500u, "order-1003", "01", card())))

            step("sale of 20.51: declined by the host (51 insufficient funds)")
            show(t.sale(SaleRequest(2_051u, "order-1004", "01", card())))

            step("settlement: 0500 totals")
            val st = t.settle()
            println(
                "    -> batch %06d settled, balanced ${st.balanced}, uploaded ${st.uploaded}; debits ${st.debitCount} / ${money(st.debitAmount)}, credits ${st.creditCount} / ${money(st.creditAmount)}; next batch %06d"
                    .format(st.batch.toInt(), t.batch().toInt()),
            )

            step("reconcile the terminal journal with the host ledger")
            val records = t.journalAll()
            println("    journal:")
            records.forEach {
                println("      ${it.reference} ${it.kind.name.lowercase().padEnd(8)} ${money(it.amount).padStart(8)} ${it.state.name.lowercase().padEnd(9)} stan %06d".format(it.stan.toInt()))
            }
            println("    host ledger:")
            sim.ledger().forEach { println("      stan %06d ${it.kind.padEnd(8)} ${money(it.amount).padStart(8)} ${it.status}".format(it.stan.toInt())) }
            val diffs = sim.reconcile(t, false)
            diffs.forEach { println("    DIFFERENCE: $it") }
            println("\nreconciled: ${records.count { it.kind.name != "BALANCE" }} transactions, ${diffs.size} differences")
            events.cancel()
            dir.deleteRecursively()
            return diffs.isEmpty()
        }
    }
}
