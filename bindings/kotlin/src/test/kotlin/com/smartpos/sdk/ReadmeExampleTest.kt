package com.smartpos.sdk

import com.smartpos.sdk.ffi.CardInput
import com.smartpos.sdk.ffi.HostSimulator
import com.smartpos.sdk.ffi.SaleRequest
import com.smartpos.sdk.ffi.Terminal
import com.smartpos.sdk.ffi.TerminalConfig
import com.smartpos.sdk.ffi.TxnState
import com.smartpos.sdk.ffi.testSecureStore
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Test
import java.nio.file.Files

/**
 * bindings/kotlin/README.md's example ("Using it"), run as written: the lines between the two
 * markers are that code block (tools/cli/tests/docs_cli.rs checks they are the same).
 */
class ReadmeExampleTest {
    @Test
    fun `the README example sells against the host simulator`() {
        // README example begins
        HostSimulator().use { sim ->                       // the acquirer host on loopback, TEST keys
            val address = sim.start("cup", true, null)     // dialect, TLS, no faults
            val config = TerminalConfig(tid = "10000001", mid = "898100012340001", host = address,
                                        tls = sim.tlsConfig())
            val dataDir = Files.createTempDirectory("smartpos").toString()
            Terminal.open(config, dataDir, testSecureStore(), null).use { terminal ->
                runBlocking {
                    terminal.signIn("01")
                    val card = CardInput.keyed("6222021234567890128", "3012")   // the simulator's TEST card
                    val sale = terminal.sale(SaleRequest(amount = 1234u, card = card, idempotencyKey = "order-1001"))
                    check(sale.record.state == TxnState.APPROVED) { sale.diagnosis?.titleEn ?: "declined" }
                }
            }
        }
        // README example ends
    }
}
