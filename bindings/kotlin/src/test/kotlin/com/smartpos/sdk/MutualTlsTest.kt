package com.smartpos.sdk

import com.smartpos.sdk.ffi.HostSimulator
import com.smartpos.sdk.ffi.SmartPosException
import com.smartpos.sdk.ffi.Terminal
import com.smartpos.sdk.ffi.TerminalConfig
import com.smartpos.sdk.ffi.TlsConfig
import com.smartpos.sdk.ffi.TxnState
import com.smartpos.sdk.ffi.testClientCertificatePem
import com.smartpos.sdk.ffi.testClientKeyPem
import com.smartpos.sdk.ffi.testSecureStore
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import java.io.File
import java.nio.file.Files
import java.util.Base64

/**
 * Mutual TLS (issue 19): the app gives the terminal its client certificate and key, as PEM or
 * DER bytes in [TlsConfig] or with the key in its SecureStore as `tls_client_key`; a host that
 * requires one refuses a terminal without it.
 */
class MutualTlsTest {
    /** The DER bytes of the first PEM block. */
    private fun der(pem: ByteArray): ByteArray =
        Base64.getDecoder().decode(
            String(pem).lines().dropWhile { !it.startsWith("-----BEGIN") }.drop(1)
                .takeWhile { !it.startsWith("-----END") }.joinToString(""),
        )

    private fun withHost(block: (HostSimulator, String, File) -> Unit) {
        val sim = HostSimulator()
        sim.requireClientCertificates(true)
        val address = sim.start("cup", true, null)
        val dir = Files.createTempDirectory("smartpos-mtls").toFile()
        try {
            block(sim, address, dir)
        } finally {
            sim.shutdown()
            sim.close()
            dir.deleteRecursively()
        }
    }

    private fun config(address: String, tls: TlsConfig, tid: String = "12345678") = TerminalConfig(
        tid = tid,
        mid = "898100012340001",
        host = address,
        tls = tls,
        connectTimeoutMs = 2_000u,
        responseTimeoutMs = 5_000u,
        utcOffsetMinutes = 480,
    )

    @Test
    fun `without a client certificate the sign-in is refused and nothing reached the host`() = withHost { sim, address, dir ->
        Terminal.open(config(address, sim.tlsConfig()), File(dir, "bare").path, testSecureStore(), null).use { t ->
            val e = assertThrows<SmartPosException.HostUnreachable> { runBlocking { t.signIn("01") } }
            assertTrue(e.reason.contains("client certificate"), e.reason)
            assertEquals("link.tls_failed", e.diagnosis?.code)
            assertTrue(sim.ledger().isEmpty())
        }
    }

    @Test
    fun `a terminal with its certificate and key signs in and sells, PEM or DER`() = withHost { sim, address, dir ->
        val pem = sim.tlsConfig().copy(clientCertificate = testClientCertificatePem(), clientKey = testClientKeyPem())
        val derTls = sim.tlsConfig().copy(
            clientCertificate = der(testClientCertificatePem()),
            clientKey = der(testClientKeyPem()),
        )
        // Two terminals (the host tells transactions apart by terminal id and STAN).
        for ((name, tls, tid) in listOf(Triple("pem", pem, "12345678"), Triple("der", derTls, "12345679"))) {
            Terminal.open(config(address, tls, tid), File(dir, name).path, testSecureStore(), null).use { t ->
                runBlocking {
                    t.signIn("01")
                    val sale = t.sale(saleOf(1_000))
                    assertEquals(TxnState.APPROVED, sale.record.state, name)
                }
            }
        }
        assertEquals(2, sim.ledger().size)
    }

    @Test
    fun `the key can stay in the app's secure store`() = withHost { sim, address, dir ->
        val store = MapStore(TEST_TMK_HEX)
        store.put("tls_client_key", testClientKeyPem())
        val tls = sim.tlsConfig().copy(clientCertificate = testClientCertificatePem())
        Terminal.open(config(address, tls), File(dir, "store").path, store, null).use { t ->
            runBlocking { t.signIn("01") }
        }
        // Without it in the store: a Config error naming the store entry, at open.
        val e = assertThrows<SmartPosException.Config> {
            Terminal.open(config(address, tls), File(dir, "nokey").path, MapStore(TEST_TMK_HEX), null)
        }
        assertTrue(e.reason.contains("tls_client_key"), e.reason)
    }
}
