package com.smartpos.sample.sdk

import android.content.Context
import com.smartpos.sample.keys.KeystoreSecureStore
import com.smartpos.sdk.ffi.PinEntry
import com.smartpos.sdk.ffi.ReceiptPrinter
import com.smartpos.sdk.ffi.SecureStore
import com.smartpos.sdk.ffi.SecurityModule
import com.smartpos.sdk.ffi.SmartPosException
import com.smartpos.sdk.ffi.Terminal
import com.smartpos.sdk.ffi.TerminalConfig
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.withContext
import java.io.File

/**
 * The app's Keystore-wrapped store as the SDK's [SecureStore] (the SDK reads `tmk` and
 * `journal_key` once on open and writes `journal_key` once). Keys only: operators and their
 * passwords live in the SDK's journal (`login`). An exception here becomes an error value in the
 * SDK (the terminal does not open), never a crash.
 */
class KeystoreSdkStore(private val store: KeystoreSecureStore) : SecureStore {
    override fun get(name: String): ByteArray? = store.get(name)

    override fun put(name: String, value: ByteArray) = store.put(name, value)
}

/** Builds the terminal and the gateway of the app from its settings. */
object SdkWiring {
    /**
     * Opens the terminal with its journal in the app's private files (`files/smartpos`),
     * the settings `tid`, `mid`, `host` from shared preferences [prefs] (TLS with the system's
     * trust store is the SDK's default when `tls` is configured; plain TCP otherwise), and
     * wires the app's card source (NFC or the mPOS reader), PIN pad and printer into it.
     * No `CardReader`: a sale goes through the device's certified [kernel] while it is ready,
     * otherwise it is contactless through [cards]. With a [securityModule] (the device's PED,
     * [VendorPedModule], or the app's [KeystoreSecurityModule]) the keys live there and
     * [secrets] holds only the journal key and guard; without one the SDK's software module
     * takes the TMK from [secrets].
     */
    fun open(
        context: Context,
        prefs: String,
        secrets: KeystoreSecureStore,
        cards: CardSource,
        pinEntry: PinEntry,
        printer: ReceiptPrinter,
        kernel: VendorKernel? = null,
        securityModule: SecurityModule? = null,
    ): SdkGateway {
        val p = context.getSharedPreferences(prefs, Context.MODE_PRIVATE)
        val config = TerminalConfig(
            tid = p.getString("tid", "") ?: "",
            mid = p.getString("mid", "") ?: "",
            host = p.getString("host", "") ?: "",
            // The offset in force now (rawOffset would ignore daylight saving time).
            utcOffsetMinutes = java.util.TimeZone.getDefault().getOffset(System.currentTimeMillis()) / 60_000,
        )
        val dir = File(context.filesDir, "smartpos").also { it.mkdirs() }
        val store = KeystoreSdkStore(secrets)
        val terminal = if (securityModule == null) {
            Terminal.open(config, dir.path, store, null)
        } else {
            Terminal.openWithSecurityModule(config, dir.path, store, null, securityModule)
        }
        return SdkGateway(terminal, cards, pinEntry, printer, kernel = kernel)
    }

    /**
     * [open] on `Dispatchers.IO` (it reads the journal and the keys: never on the main thread);
     * the SDK's refusal (not configured, journal refused, ...) becomes a [GatewayException] with
     * its diagnosis for the error screen. [printer] is built there too (it may bind a service).
     */
    suspend fun openInBackground(
        context: Context,
        prefs: String,
        secrets: KeystoreSecureStore,
        cards: CardSource,
        pinEntry: PinEntry,
        printer: () -> ReceiptPrinter,
        kernel: VendorKernel? = null,
        securityModule: SecurityModule? = null,
    ): SdkGateway = withContext(Dispatchers.IO) {
        try {
            open(context, prefs, secrets, cards, pinEntry, printer(), kernel, securityModule)
        } catch (e: SmartPosException) {
            throw SdkGateway.failure(e)
        }
    }
}
