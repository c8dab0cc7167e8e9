package com.smartpos.sample.sdk

import com.smartpos.sdk.ffi.DataMode
import com.smartpos.sdk.ffi.KeyAlgorithm
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

/**
 * The slot where a smart POS's security processor (PED: Sunmi `SecurityOptV2` and
 * `PinPadOptV2`, PAX Neptune `IPed`, Newland's key system) plugs into the SDK's
 * `SecurityModule`, like [VendorKernel] for the EMV kernel. The sample links no vendor SDK:
 * subclass this for your device, implement the five vendor calls below, and open the terminal
 * with `Terminal.openWithSecurityModule(..., yourPed)` (`SdkWiring.open(securityModule = ...)`,
 * `PosApp.securityModule()`). The SDK then keeps no key at all: its secure store holds only
 * the journal key and the journal guard.
 *
 * What the SDK hands you and expects back, and the vendor call for each (names differ between
 * SDK versions: look for the step, not the exact name):
 *
 * - [loadWorkingKey] — a sign-in's key, still encrypted under the master key in slot
 *   [Slots.master], with the host's check value. Sunmi: `SecurityOptV2.saveCiphertextKey(
 *   keyIndex, keyValue, checkValue, encryptIndex = master, keyType = PIK/MAK/TDK, keyAlgType)`;
 *   PAX: `IPed.writeKey(TMK, master, TPK/TAK/TDK, slot, ciphertext, KCV check mode, checkValue)`.
 *   Return false when the PED refuses the key for its check value.
 * - [pedMac] — Sunmi `SecurityOptV2.calcMac(keyIndex, macType, data, out)` (the UnionPay ECB
 *   MAC and X9.19 are among its MAC types); PAX `IPed.getMac(slot, data, mode)`.
 * - [pedPinBlock] — the PED's own PIN pad: Sunmi `PinPadOptV2.initPinPad(config with the PAN,
 *   the PIK index and format 0, listener)` whose `onConfirm` gives the encrypted block; PAX
 *   `IPed.getPinBlock(slot, "4,5,6,...,12", pan block, ISO9564 format 0, timeout)`. Return null
 *   when the cardholder cancels; the PIN never reaches the app.
 * - [pedEncrypt] — Sunmi `SecurityOptV2.dataEncrypt(keyIndex, data, mode, iv, out)`; PAX
 *   `IPed.calcDes(slot, data, encrypt)`.
 * - [pedHasKey] — whether a slot holds a key (Sunmi `SecurityOptV2.getKeyCheckValue` succeeds;
 *   PAX `IPed.getKcv`).
 *
 * Vendor PEDs answer through listeners on binder threads for the PIN pad: block in
 * [pedPinBlock] until the listener answers (a `CompletableFuture`, as [VendorKernel]'s
 * `awaitVendor` does), with a timeout. The SDK calls all of this on the terminal's worker thread:
 * never call the terminal from here.
 *
 * A PED loads keys slot by slot, so a sign-in whose second key fails its check has replaced the
 * first: the SDK then reports the sign-in failed, and the MACs that follow fail and make it sign
 * in again once (issue 18 item 5), which loads a consistent set.
 */
abstract class VendorPedModule(protected val slots: Slots = Slots()) : SecurityModule {
    /** The PED's key indexes: where the master key was injected and where each working key goes. */
    data class Slots(val master: Int = 0, val pik: Int = 1, val mak: Int = 2, val tdk: Int = 3)

    /** Loads one working key (see the class documentation); false when its check value fails. */
    protected abstract fun loadWorkingKey(masterSlot: Int, role: KeyRole, slot: Int, ciphertext: ByteArray, checkValue: ByteArray): Boolean

    /** The MAC of [data] under the key in [slot]. */
    protected abstract fun pedMac(slot: Int, method: MacMethod, data: ByteArray): ByteArray

    /** The PIN block from the PED's PIN pad, under the key in [slot]; null when cancelled. */
    protected abstract fun pedPinBlock(slot: Int, request: PinPadRequest): ByteArray?

    /** [data] encrypted under the key in [slot]. */
    protected abstract fun pedEncrypt(slot: Int, mode: DataMode, data: ByteArray): ByteArray

    /** Whether [slot] holds a key. */
    protected abstract fun pedHasKey(slot: Int): Boolean

    override fun kind(): ModuleKind = ModuleKind.DEVICE

    override fun installWorkingKeys(delivery: KeyDelivery) {
        // The SDK's master index 0 is the PED's master slot; another index is another master.
        val master = slots.master + delivery.masterIndex.toInt()
        for (k in delivery.keys) {
            if (k.algorithm != KeyAlgorithm.TDES) throw SecurityModuleException.Unsupported("${k.algorithm} keys in this PED slot")
            val ok = vendor { loadWorkingKey(master, k.role, slotOf(k.role), k.ciphertext, k.checkValue) }
            if (!ok) throw SecurityModuleException.KeyCheck(k.role)
        }
    }

    override fun hasWorkingKey(role: KeyRole): Boolean = runCatching { pedHasKey(slotOf(role)) }.getOrDefault(false)

    override fun mac(key: KeyRef, direction: MacDirection, method: MacMethod, data: ByteArray): ByteArray {
        if (key !is KeyRef.Working) throw SecurityModuleException.NoDukptKey()
        return vendor { pedMac(slots.mak, method, data) }
    }

    override fun pinBlock(request: PinPadRequest): PinBlock {
        if (request.key !is KeyRef.Working) throw SecurityModuleException.NoDukptKey()
        val block = vendor { pedPinBlock(slots.pik, request) } ?: throw SecurityModuleException.PinCancelled()
        return PinBlock(block)
    }

    override fun encryptData(key: KeyRef, mode: DataMode, data: ByteArray): ByteArray {
        if (key !is KeyRef.Working) throw SecurityModuleException.NoDukptKey()
        return vendor { pedEncrypt(slots.tdk, mode, data) }
    }

    /** DUKPT on the PED (Sunmi `dukptIncreaseKSN` / `dukptCurrentKSN`, PAX `IPed.incKsnDukpt`) is not wired in this slot. */
    override fun dukptNext(): ByteArray = throw SecurityModuleException.NoDukptKey()

    private fun slotOf(role: KeyRole) = when (role) {
        KeyRole.PIK -> slots.pik
        KeyRole.MAK -> slots.mak
        KeyRole.TDK -> slots.tdk
    }

    /** A vendor call; its exceptions become `SecurityModuleException.Device` with the vendor's message only. */
    private fun <T> vendor(call: () -> T): T = try {
        call()
    } catch (e: SecurityModuleException) {
        throw e
    } catch (e: Exception) {
        throw SecurityModuleException.Device("${e.javaClass.simpleName}: ${e.message ?: "no message"}")
    }
}
