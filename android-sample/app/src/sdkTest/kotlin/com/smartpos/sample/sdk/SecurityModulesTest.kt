package com.smartpos.sample.sdk

import com.smartpos.sdk.ffi.DataMode
import com.smartpos.sdk.ffi.HostSimulator
import com.smartpos.sdk.ffi.KeyAlgorithm
import com.smartpos.sdk.ffi.KeyDelivery
import com.smartpos.sdk.ffi.KeyRef
import com.smartpos.sdk.ffi.KeyRole
import com.smartpos.sdk.ffi.MacDirection
import com.smartpos.sdk.ffi.MacMethod
import com.smartpos.sdk.ffi.ModuleKind
import com.smartpos.sdk.ffi.PinFormat
import com.smartpos.sdk.ffi.PinPadRequest
import com.smartpos.sdk.ffi.SecurityModuleException
import com.smartpos.sdk.ffi.SimulatedKernel
import com.smartpos.sdk.ffi.SoftwareSecurityModule
import com.smartpos.sdk.ffi.Terminal
import com.smartpos.sdk.ffi.TerminalConfig
import com.smartpos.sdk.ffi.TxnState
import com.smartpos.sdk.ffi.WrappedKey
import com.smartpos.sdk.ffi.testSecureStore
import kotlinx.coroutines.runBlocking
import org.junit.After
import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Before
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.RobolectricTestRunner
import java.io.File
import java.nio.file.Files
import java.util.Collections
import javax.crypto.Cipher
import javax.crypto.SecretKey
import javax.crypto.spec.SecretKeySpec

/** A [KeyVault] in JCE keys: Robolectric has no `AndroidKeyStore`; the module's code is the same. */
class MemoryVault : KeyVault {
    val keys: MutableMap<String, SecretKey> = Collections.synchronizedMap(mutableMapOf())
    override fun put(alias: String, key: ByteArray) {
        keys[alias] = SecretKeySpec(key.copyOf(), "DESede")
    }

    override fun get(alias: String): SecretKey? = keys[alias]
}

/**
 * A PED for the [VendorPedModule] slot, in JCE keys, recording the vendor calls it gets: what a
 * Sunmi or PAX adapter would be asked, with the slots, the ciphertext and the check values.
 */
class FakePed(private val tmk: ByteArray) : VendorPedModule() {
    val calls: MutableList<String> = Collections.synchronizedList(mutableListOf())
    private val inner = KeystoreSecurityModule(MemoryVault()) { null }
    var failing: Exception? = null

    init {
        inner.provisionMasterKey(tmk)
    }

    override fun loadWorkingKey(masterSlot: Int, role: KeyRole, slot: Int, ciphertext: ByteArray, checkValue: ByteArray): Boolean {
        calls += "load master=$masterSlot $role slot=$slot"
        failing?.let { throw it }
        return try {
            inner.installWorkingKeys(KeyDelivery(0u, listOf(WrappedKey(role, KeyAlgorithm.TDES, ciphertext, checkValue))))
            true
        } catch (_: SecurityModuleException.KeyCheck) {
            false
        }
    }

    override fun pedMac(slot: Int, method: MacMethod, data: ByteArray): ByteArray {
        calls += "mac slot=$slot $method"
        failing?.let { throw it }
        return inner.mac(KeyRef.Working, MacDirection.REQUEST, method, data)
    }

    override fun pedPinBlock(slot: Int, request: PinPadRequest): ByteArray? {
        calls += "pin slot=$slot ${request.panMasked} ${request.amount}"
        // The cardholder presses Cancel on the PED's pad.
        return null
    }

    override fun pedEncrypt(slot: Int, mode: DataMode, data: ByteArray): ByteArray = inner.encryptData(KeyRef.Working, mode, data)

    override fun pedHasKey(slot: Int): Boolean = inner.hasWorkingKey(
        when (slot) {
            slots.pik -> KeyRole.PIK
            slots.mak -> KeyRole.MAK
            else -> KeyRole.TDK
        },
    )
}

/**
 * The sample's security modules: [KeystoreSecurityModule] (keys in the Android Keystore, the
 * software case) and the [VendorPedModule] slot for a smart POS's PED. The Keystore module runs
 * sales and a PIN sale against the SDK's real core and the test kit's host simulator, and its
 * MACs and PIN blocks equal the SDK's own software module's for the same keys.
 */
@RunWith(RobolectricTestRunner::class)
class SecurityModulesTest {
    private lateinit var sim: HostSimulator
    private lateinit var dir: File

    @Before
    fun start() {
        sim = HostSimulator()
        dir = Files.createTempDirectory("smartpos-secmod").toFile()
    }

    @After
    fun stop() {
        sim.shutdown()
        sim.close()
        dir.deleteRecursively()
    }

    private fun config(address: String) = TerminalConfig(
        tid = "10000001", mid = "898100012340001", host = address, tls = sim.tlsConfig(),
        connectTimeoutMs = 2_000u, responseTimeoutMs = 2_000u, utcOffsetMinutes = 480,
    )

    private fun keystoreModule(pad: MutableList<String>): Pair<KeystoreSecurityModule, MemoryVault> {
        val vault = MemoryVault()
        val module = KeystoreSecurityModule(vault) { req ->
            assertEquals("622848*********0018", req.panMasked)
            pad.removeFirstOrNull()?.toCharArray()
        }
        module.provisionMasterKey(TEST_TMK.copyOf())
        return module to vault
    }

    @Test
    fun keystore_module_signs_in_sells_and_takes_a_pin_against_the_real_core() = runBlocking {
        val address = sim.start("cup", true, null)
        val pad = Collections.synchronizedList(mutableListOf<String>())
        val (module, vault) = keystoreModule(pad)
        Terminal.openWithSecurityModule(config(address), dir.path, testSecureStore(), null, module).use { t ->
            t.signIn("01")
            assertTrue(module.hasWorkingKey(KeyRole.PIK) && module.hasWorkingKey(KeyRole.MAK))
            // The vault holds the keys; nothing else in the app does.
            assertTrue(vault.keys.keys.containsAll(listOf("tmk.0", "pik", "mak", "mak.left", "mak.right")))
            val kernel = SimulatedKernel("unionpay", "chip", "approve").asKernel()
            assertEquals(TxnState.APPROVED, t.saleWithKernel(1_234u, kernel, null, null, "01").record.state)
            // The PIN from the app's own PIN screen, as an ISO format 0 block under the vault's PIK.
            pad += "1234"
            val pinSale = t.saleWithKernel(1_500u, SimulatedKernel("unionpay", "chip", "pin").asKernel(), null, null, "01")
            assertEquals(TxnState.APPROVED, pinSale.record.state)
            assertTrue("the PIN was taken", pad.isEmpty())
            // Cancelled on the PIN screen: nothing is sent, the customer is not charged.
            val before = sim.ledger().size
            try {
                t.saleWithKernel(1_600u, SimulatedKernel("unionpay", "chip", "pin").asKernel(), null, null, "01")
                fail("a cancelled PIN must not sell")
            } catch (e: com.smartpos.sdk.ffi.SmartPosException) {
                assertEquals(before, sim.ledger().size)
            }
        }
    }

    @Test
    fun keystore_module_macs_and_pin_blocks_equal_the_sdk_s_software_module() {
        val pad = mutableListOf<String>()
        val (module, _) = keystoreModule(pad)
        val sdk = SoftwareSecurityModule()
        val pik = ByteArray(16) { (0x11 + it).toByte() }
        val mak = ByteArray(16) { (0x51 + 3 * it).toByte() }
        val tdk = ByteArray(16) { (0x21 + 5 * it).toByte() }
        val delivery = KeyDelivery(0u, listOf(wrap(KeyRole.PIK, pik), wrap(KeyRole.MAK, mak), wrap(KeyRole.TDK, tdk)))
        module.installWorkingKeys(delivery)
        sdk.asSecurityModule().installWorkingKeys(delivery)
        for (size in listOf(0, 1, 7, 8, 9, 16, 100)) {
            val data = ByteArray(size) { (it * 7).toByte() }
            for (method in listOf(MacMethod.CUP_ECB, MacMethod.X919)) {
                assertArrayEquals(
                    "$method over $size bytes",
                    sdk.asSecurityModule().mac(KeyRef.Working, MacDirection.REQUEST, method, data),
                    module.mac(KeyRef.Working, MacDirection.REQUEST, method, data),
                )
            }
        }
        val data = ByteArray(24) { it.toByte() }
        for (mode in listOf(DataMode.ECB, DataMode.CBC_ZERO_IV)) {
            assertArrayEquals(
                sdk.asSecurityModule().encryptData(KeyRef.Working, mode, data),
                module.encryptData(KeyRef.Working, mode, data),
            )
        }
        // Format 0: the clear block of PIN 1234 and the test PAN, as ISO 9564-1 builds it.
        val clear = ByteArray(8)
        KeystoreSecurityModule.isoFormat0("1234".toCharArray(), "6228480402564890018", clear)
        assertEquals("041230FDA9B76FFE", clear.joinToString("") { "%02X".format(it) })
        assertEquals(ModuleKind.SOFTWARE, module.kind())
    }

    @Test
    fun keystore_module_refuses_keys_that_fail_their_check_and_keeps_the_old_ones() {
        val (module, vault) = keystoreModule(mutableListOf())
        val mak = ByteArray(16) { 0x33 }
        module.installWorkingKeys(KeyDelivery(0u, listOf(wrap(KeyRole.PIK, mak), wrap(KeyRole.MAK, mak))))
        val before = vault.keys["mak"]
        val bad = wrap(KeyRole.MAK, ByteArray(16) { 0x44 }).let { it.copy(checkValue = it.checkValue.copyOf().also { c -> c[0] = (c[0] + 1).toByte() }) }
        try {
            module.installWorkingKeys(KeyDelivery(0u, listOf(wrap(KeyRole.PIK, ByteArray(16) { 0x44 }), bad)))
            fail("a bad check value must be refused")
        } catch (e: SecurityModuleException.KeyCheck) {
            assertEquals(KeyRole.MAK, e.role)
        }
        assertTrue("the previous MAK stays", vault.keys["mak"] === before)
        try {
            module.installWorkingKeys(KeyDelivery(3u, listOf(wrap(KeyRole.MAK, mak))))
            fail("no master key at index 3")
        } catch (_: SecurityModuleException.NoMasterKey) {
        }
        try {
            module.dukptNext()
            fail("no DUKPT here")
        } catch (_: SecurityModuleException.NoDukptKey) {
        }
    }

    @Test
    fun vendor_ped_slot_maps_the_sdk_s_calls_to_slots_and_vendor_errors_to_device_errors() = runBlocking {
        val address = sim.start("cup", true, null)
        val ped = FakePed(TEST_TMK.copyOf())
        Terminal.openWithSecurityModule(config(address), dir.path, testSecureStore(), null, ped).use { t ->
            t.signIn("01")
            // The sign-in's keys went to the PED's slots under its master slot, as ciphertext.
            assertEquals(
                listOf("load master=0 PIK slot=1", "load master=0 MAK slot=2", "load master=0 TDK slot=3"),
                ped.calls.filter { it.startsWith("load") },
            )
            assertEquals(ModuleKind.DEVICE, ped.kind())
            assertEquals(TxnState.APPROVED, t.saleWithKernel(1_234u, SimulatedKernel("unionpay", "chip", "approve").asKernel(), null, null, "01").record.state)
            assertTrue(ped.calls.contains("mac slot=2 CUP_ECB"))
            // The PED's PIN pad, cancelled: the SDK sends nothing.
            val before = sim.ledger().size
            try {
                t.saleWithKernel(1_500u, SimulatedKernel("unionpay", "chip", "pin").asKernel(), null, null, "01")
                fail("a cancelled PIN must not sell")
            } catch (e: com.smartpos.sdk.ffi.SmartPosException) {
                assertEquals(before, sim.ledger().size)
            }
            assertTrue(ped.calls.any { it.startsWith("pin slot=1 622848*********0018 1500") })
            // A vendor exception while MACing: the sale stops before anything is sent.
            ped.failing = IllegalStateException("PED busy")
            try {
                t.saleWithKernel(1_700u, SimulatedKernel("unionpay", "chip", "approve").asKernel(), null, null, "01")
                fail("no MAC, no sale")
            } catch (e: com.smartpos.sdk.ffi.SmartPosException.Security) {
                assertEquals("op.security_module", e.diagnosis?.code)
            }
            assertEquals(before, sim.ledger().size)
            assertFalse(ped.calls.joinToString().contains("0123456789ABCDEF"))
        }
    }

    private companion object {
        /** The simulator's documented TEST master key (never on a production device). */
        val TEST_TMK: ByteArray = "0123456789ABCDEFFEDCBA9876543210".chunked(2).map { it.toInt(16).toByte() }.toByteArray()

        /** [key] as the host delivers it: under the TEST TMK, with a 4-byte check value. */
        fun wrap(role: KeyRole, key: ByteArray): WrappedKey {
            val tmk = SecretKeySpec(KeystoreSecurityModule.tripleLength(TEST_TMK), "DESede")
            val enc = Cipher.getInstance("DESede/ECB/NoPadding").run { init(Cipher.ENCRYPT_MODE, tmk); doFinal(key) }
            val k = SecretKeySpec(KeystoreSecurityModule.tripleLength(key), "DESede")
            val cv = Cipher.getInstance("DESede/ECB/NoPadding").run { init(Cipher.ENCRYPT_MODE, k); doFinal(ByteArray(8)) }
            return WrappedKey(role, KeyAlgorithm.TDES, enc, cv.copyOf(4))
        }
    }
}
