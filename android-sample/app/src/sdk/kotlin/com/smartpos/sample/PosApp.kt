package com.smartpos.sample

import android.app.Application
import android.content.Context
import android.nfc.NfcAdapter
import android.bluetooth.BluetoothManager
import android.hardware.usb.UsbManager
import com.smartpos.sample.keys.AesGcmKeyWrapper
import com.smartpos.sample.keys.AndroidKeystoreKeys
import com.smartpos.sample.keys.KeystoreSecureStore
import com.smartpos.sample.nfc.NfcCardReader
import com.smartpos.sample.print.BluetoothSppPrinter
import com.smartpos.sample.print.PrinterSelector
import com.smartpos.sample.print.SunmiPrinter
import com.smartpos.sample.print.UsbPrinter
import com.smartpos.sample.sdk.SdkGateway
import com.smartpos.sample.sdk.SdkWiring
import com.smartpos.sample.ui.PosActivity
import com.smartpos.sample.ui.PosViewModel

/**
 * Sample app files:
 * - `nfc/`: [NfcCardReader] (reader mode, IsoDep) and the `ApduChannel` it yields.
 * - `print/`: `ReceiptSink` with Bluetooth SPP, USB and Sunmi AIDL printers and `PrinterSelector`.
 * - `ble/`: the mPOS reader's BLE GATT transport and the Bluetooth runtime permissions.
 * - `keys/`: the Android Keystore-backed secure store for the TMK and the journal key.
 * - `ui/`: the ViewModel, the gateway interface the screens use, the activity, zh/en texts.
 * - `sdk/`: the bridge from all of the above to the SmartPOS SDK's foreign traits.
 *
 * This class wires them once per process: one terminal, one printer selector, one NFC reader.
 */
class PosApp : Application(), PosActivity.ViewModelSource {
    /** NFC card access (null adapter: the UI says NFC is missing). */
    val nfc: NfcCardReader by lazy { NfcCardReader(NfcAdapter.getDefaultAdapter(this)) }

    /** The printer used at print time: built-in Sunmi, else USB, else a paired Bluetooth printer. */
    val printers: PrinterSelector by lazy {
        val sunmi = SunmiPrinter().also { it.bind(this) }
        val usb = UsbPrinter(this, getSystemService(UsbManager::class.java))
        val bt = getSystemService(BluetoothManager::class.java)?.adapter
        val address = getSharedPreferences(PREFS, Context.MODE_PRIVATE).getString("printer.bt", "") ?: ""
        PrinterSelector(listOf(sunmi, usb, BluetoothSppPrinter(bt, address)))
    }

    /** TMK and journal key, wrapped by the Keystore key. */
    val secrets: KeystoreSecureStore by lazy {
        KeystoreSecureStore(
            getSharedPreferences(PREFS, Context.MODE_PRIVATE),
            AesGcmKeyWrapper { AndroidKeystoreKeys.getOrCreate() },
        )
    }

    /**
     * The SDK terminal behind the screens. Cards: the SDK's reader takes keyed / track-2 data
     * today; the NFC path ([nfc]) joins when the bindings expose the SDK's APDU transport.
     */
    private val gateway: SdkGateway by lazy {
        SdkWiring.open(this, PREFS, secrets, SdkWiring.contactlessNotYetSupported)
    }

    /** A ViewModel for the activity (the gateway and the terminal outlive it). */
    override fun newViewModel(): PosViewModel = PosViewModel(gateway)

    private companion object {
        const val PREFS = "smartpos"
    }
}
