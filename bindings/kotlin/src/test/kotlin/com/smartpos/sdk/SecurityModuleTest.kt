package com.smartpos.sdk

import com.smartpos.sdk.ffi.DataMode
import com.smartpos.sdk.ffi.KeyDelivery
import com.smartpos.sdk.ffi.KeyRef
import com.smartpos.sdk.ffi.KeyRole
import com.smartpos.sdk.ffi.MacDirection
import com.smartpos.sdk.ffi.MacMethod
import com.smartpos.sdk.ffi.ModuleKind
import com.smartpos.sdk.ffi.PinBlock
import com.smartpos.sdk.ffi.PinPadRequest
import com.smartpos.sdk.ffi.SecurityModule
import com.smartpos.sdk.ffi.SecurityModuleException
import com.smartpos.sdk.ffi.SimulatedKernel
import com.smartpos.sdk.ffi.SmartPosException
import com.smartpos.sdk.ffi.SoftwareSecurityModule
import com.smartpos.sdk.ffi.Terminal
import com.smartpos.sdk.ffi.TxnState
import com.smartpos.sdk.ffi.testSecureStore
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import java.io.File
import java.util.Collections

/**
 * What an app writes around Sunmi `SecurityOptV2` / PAX `IPed`: a Kotlin `SecurityModule`.
 * This one delegates to the test kit's software module and records every argument it was
 * handed, so the test can show what crosses: ciphertext and check values in, MACs and
 * encrypted PIN blocks out, never a clear key or a PIN digit.
 */
class RecordingModule(private val inner: SecurityModule) : SecurityModule {
    val seen: MutableList<String> = Collections.synchronizedList(mutableListOf())
    val deliveries: MutableList<KeyDelivery> = Collections.synchronizedList(mutableListOf())
    var failMacs = false

    override fun kind(): ModuleKind = ModuleKind.DEVICE

    override fun installWorkingKeys(delivery: KeyDelivery) {
        deliveries.add(delivery)
        seen.add(delivery.toString())
        inner.installWorkingKeys(delivery)
    }

    override fun hasWorkingKey(role: KeyRole): Boolean = inner.hasWorkingKey(role)

    override fun mac(key: KeyRef, direction: MacDirection, method: MacMethod, data: ByteArray): ByteArray {
        seen.add("mac ${if (key is KeyRef.Working) "WORKING" else "DUKPT"} $direction $method ${data.size}")
        if (failMacs) throw SecurityModuleException.Device("PED busy")
        return inner.mac(key, direction, method, data)
    }

    override fun pinBlock(request: PinPadRequest): PinBlock {
        seen.add(request.toString())
        return inner.pinBlock(request)
    }

    override fun encryptData(key: KeyRef, mode: DataMode, data: ByteArray): ByteArray =
        inner.encryptData(key, mode, data)

    override fun dukptNext(): ByteArray = inner.dukptNext()
}

/** A terminal whose keys are in the app's security module (`Terminal.openWithSecurityModule`). */
class SecurityModuleTest {
    private fun Env.openWith(module: SecurityModule, tid: String = "10000001"): Terminal =
        Terminal.openWithSecurityModule(config(tid), File(dir, tid).path, testSecureStore(), null, module)

    @Test
    fun `sales and a PIN sale go through the app's module, which sees only ciphertext`() = runBlocking {
        Env().use { env ->
            val software = SoftwareSecurityModule()
            val module = RecordingModule(software.asSecurityModule())
            env.openWith(module).use { t ->
                assertFalse(module.hasWorkingKey(KeyRole.MAK))
                t.signIn("01")
                assertTrue(module.hasWorkingKey(KeyRole.PIK) && module.hasWorkingKey(KeyRole.MAK))
                val delivery = module.deliveries.single()
                assertEquals(0u, delivery.masterIndex)
                for (k in delivery.keys) {
                    assertEquals(16, k.ciphertext.size)
                    assertEquals(4, k.checkValue.size)
                }
                // A keyed sale: MACed by the module, the host's answer checked by it.
                val sale = t.sale(saleOf(1_234))
                assertEquals(TxnState.APPROVED, sale.record.state)
                assertTrue(module.seen.any { it.startsWith("mac WORKING REQUEST CUP_ECB") }, "${module.seen}")
                assertTrue(module.seen.any { it.startsWith("mac WORKING RESPONSE CUP_ECB") }, "${module.seen}")
                // A chip card asking for an online PIN: the module's pad takes it (no PinEntry).
                software.typePin("1234")
                val kernel = SimulatedKernel("unionpay", "chip", "pin").asKernel()
                val pinSale = t.saleWithKernel(1_500u, kernel, null, null, "01")
                assertEquals(TxnState.APPROVED, pinSale.record.state, "${pinSale.diagnosis}")
                val prompt = module.seen.single { it.startsWith("PinPadRequest") }
                assertTrue(prompt.contains("622848*********0018"), prompt)
                assertFalse(prompt.contains("6228480402564890018"), "the PAN is masked in toString: $prompt")
                assertEquals(2, env.sim.ledger().count { it.status == "approved" })
            }
            // Nothing the module was handed holds the TEST master key.
            val all = module.seen.joinToString(" ").uppercase()
            assertFalse(all.contains("0123456789ABCDEF"), all)
        }
    }

    @Test
    fun `a module that fails to MAC stops the sale before anything is sent, with a diagnosis`() = runBlocking {
        Env().use { env ->
            val module = RecordingModule(SoftwareSecurityModule().asSecurityModule())
            env.openWith(module).use { t ->
                t.signIn("01")
                module.failMacs = true
                val e = assertThrows<SmartPosException.Security> { runBlocking { t.sale(saleOf(2_000)) } }
                assertEquals("op.security_module", e.diagnosis?.code)
                assertTrue(env.sim.ledger().isEmpty(), "nothing reached the host")
                module.failMacs = false
                assertEquals(TxnState.APPROVED, t.sale(saleOf(2_100)).record.state)
            }
        }
    }

    @Test
    fun `the software module has no PIN pad until the test types a PIN`() {
        val software = SoftwareSecurityModule()
        assertEquals(ModuleKind.SOFTWARE, software.asSecurityModule().kind())
        assertThrows<SmartPosException.Rejected> { software.typePin("12") }
    }
}
