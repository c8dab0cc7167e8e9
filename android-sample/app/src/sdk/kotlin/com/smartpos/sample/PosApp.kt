package com.smartpos.sample

import android.app.Activity
import android.app.Application
import android.os.Bundle
import android.content.Context
import android.nfc.NfcAdapter
import android.bluetooth.BluetoothManager
import android.hardware.usb.UsbManager
import com.smartpos.sample.ble.BlePermissions
import com.smartpos.sample.keys.AesGcmKeyWrapper
import com.smartpos.sample.keys.AndroidKeystoreKeys
import com.smartpos.sample.keys.KeystoreSecureStore
import com.smartpos.sample.nfc.NfcCardReader
import com.smartpos.sample.print.BluetoothSppPrinter
import com.smartpos.sample.print.PrinterSelector
import com.smartpos.sample.print.SunmiPrinter
import com.smartpos.sample.print.UsbPrinter
import com.smartpos.sample.nfc.NfcState
import com.smartpos.sample.sdk.BleMposBridge
import com.smartpos.sample.sdk.CardSession
import com.smartpos.sample.sdk.CardSource
import com.smartpos.sample.sdk.DialogPinEntry
import com.smartpos.sample.sdk.EscPosReceiptPrinter
import com.smartpos.sample.sdk.MposCardSource
import com.smartpos.sample.sdk.NfcCardSource
import com.smartpos.sample.sdk.SdkWiring
import com.smartpos.sample.sdk.VendorKernel
import com.smartpos.sample.ui.DeferredGateway
import com.smartpos.sample.ui.PaymentGateway
import com.smartpos.sample.ui.PosActivity
import com.smartpos.sample.ui.PosViewModel
import com.smartpos.sdk.ffi.SecurityModule

/**
 * Sample app files:
 * - `nfc/`: [NfcCardReader] (reader mode, IsoDep) and the `ApduChannel` it yields.
 * - `print/`: `ReceiptSink` with Bluetooth SPP, USB and Sunmi AIDL printers and `PrinterSelector`.
 * - `ble/`: the mPOS reader's BLE GATT transport and the Bluetooth runtime permissions.
 * - `keys/`: the Android Keystore-backed secure store for the TMK and the journal key.
 * - `ui/`: the ViewModel, the gateway interface the screens use, the activity, zh/en texts.
 * - `sdk/`: the bridges from all of the above to the SmartPOS SDK's foreign traits
 *   (`Bridges.kt`: `IsoDepApduTransport`, `LazyCardTransport`, `EscPosReceiptPrinter`,
 *   `BleMposBridge`, PIN entry), `VendorKernel.kt` (the slot for a smart POS's certified EMV
 *   kernel), `VendorPed.kt` (the slot for its security processor), `KeystoreSecurityModule.kt`
 *   (keys in the Android Keystore on a device without one) and `SdkGateway`, the screens'
 *   gateway over the SDK's `Terminal`.
 *
 * This class wires them once per process: one terminal, one printer selector, one NFC reader,
 * the device's EMV kernel if there is one ([vendorKernel]), and the mPOS reader once the app
 * has connected one ([useMposReader]).
 */
class PosApp : Application(), PosActivity.ViewModelSource {
    /** NFC card access (null adapter: the UI says NFC is missing). */
    val nfc: NfcCardReader by lazy { NfcCardReader(NfcAdapter.getDefaultAdapter(this)) }

    /** The printer used at print time: built-in Sunmi, else USB, else a paired Bluetooth printer. */
    val printers: PrinterSelector by lazy {
        val sunmi = SunmiPrinter().also { it.bind(this) }
        val usb = UsbPrinter(this, getSystemService(UsbManager::class.java))
        val bt = getSystemService(BluetoothManager::class.java)?.adapter
        val spp = BluetoothSppPrinter(bt, btPrinterAddress(), missingPermissions = { BlePermissions.missing(this, BlePermissions.connect()) })
        PrinterSelector(listOf(sunmi, usb, spp))
    }

    private fun btPrinterAddress(): String = getSharedPreferences(PREFS, Context.MODE_PRIVATE).getString("printer.bt", "") ?: ""

    /** `BLUETOOTH_CONNECT` (Android 12+) when a Bluetooth printer is set up and it is not granted yet. */
    override fun runtimePermissions(): List<String> =
        if (btPrinterAddress().isEmpty()) emptyList() else BlePermissions.missing(this, BlePermissions.connect())

    /** TMK and journal key, wrapped by the Keystore key. */
    val secrets: KeystoreSecureStore by lazy {
        KeystoreSecureStore(
            getSharedPreferences(PREFS, Context.MODE_PRIVATE),
            AesGcmKeyWrapper { AndroidKeystoreKeys.getOrCreate() },
        )
    }

    /** The resumed activity: NFC reader mode and the PIN dialog belong to it. */
    @Volatile
    private var foreground: Activity? = null

    /** The connected mPOS reader, if any (set by [useMposReader]). */
    @Volatile
    private var mpos: BleMposBridge? = null

    /** Uses [bridge] (a connected BLE reader) for the next sales instead of NFC; null goes back to NFC. */
    fun useMposReader(bridge: BleMposBridge?) {
        mpos?.takeIf { it !== bridge }?.close()
        mpos = bridge
    }

    /** NFC when the device has it and it is on, else the mPOS reader when one is connected. */
    private val cards: CardSource by lazy {
        val tap = NfcCardSource(nfc) { foreground }
        val reader = MposCardSource({ mpos?.reader })
        object : CardSource {
            override suspend fun present(amount: Long): CardSession =
                if (mpos != null && nfc.availability() != NfcState.IDLE) reader.present(amount) else tap.present(amount)

            override fun cancel(): Boolean = tap.cancel() || reader.cancel()
        }
    }

    /**
     * The smart POS's certified EMV kernel, or null on a phone or a device without one (sales
     * are then contactless). The sample links no vendor SDK: on a Sunmi or PAX device return
     * your [com.smartpos.sample.sdk.VendorKernel] subclass here (e.g. over Sunmi PayLib's
     * `EMVOptV2` once `SunmiPayKernel` is connected); `isReady()` tells the gateway, sale by
     * sale, whether to use it.
     */
    private fun vendorKernel(): VendorKernel? = null

    /**
     * Where the terminal's keys live, or null for the SDK's software module (the TMK from
     * [secrets], working keys in the SDK's memory). On a Sunmi or PAX device return your
     * [com.smartpos.sample.sdk.VendorPedModule] subclass (keys in the PED; the PIN on its pad);
     * on a phone, a [com.smartpos.sample.sdk.KeystoreSecurityModule] over
     * [com.smartpos.sample.sdk.AndroidKeystoreVault] keeps them in the Android Keystore (provision
     * its master key once with `provisionMasterKey`).
     */
    private fun securityModule(): SecurityModule? = null

    /**
     * The SDK terminal behind the screens, opened by the first command (the ViewModel asks at
     * once) on a background thread; a terminal that cannot open is an error screen with the
     * SDK's diagnosis (e.g. journal refused: call support, do not clear data), never a crash.
     */
    private val gateway: PaymentGateway = DeferredGateway {
        SdkWiring.openInBackground(
            this, PREFS, secrets, cards, DialogPinEntry({ foreground }), { EscPosReceiptPrinter(printers) }, vendorKernel(),
            securityModule(),
        )
    }

    override fun onCreate() {
        super.onCreate()
        // Reader mode follows the resumed activity (and never touches a destroyed one).
        registerActivityLifecycleCallbacks(nfc)
        registerActivityLifecycleCallbacks(object : ActivityLifecycleCallbacks {
            override fun onActivityResumed(activity: Activity) {
                foreground = activity
            }

            override fun onActivityPaused(activity: Activity) {
                if (foreground === activity) foreground = null
            }

            override fun onActivityCreated(activity: Activity, savedInstanceState: Bundle?) = Unit
            override fun onActivityStarted(activity: Activity) = Unit
            override fun onActivityStopped(activity: Activity) = Unit
            override fun onActivitySaveInstanceState(activity: Activity, outState: Bundle) = Unit
            override fun onActivityDestroyed(activity: Activity) = Unit
        })
    }

    /** A ViewModel for the activity (the gateway and the terminal outlive it). */
    override fun newViewModel(): PosViewModel = PosViewModel(gateway)

    private companion object {
        const val PREFS = "smartpos"
    }
}
