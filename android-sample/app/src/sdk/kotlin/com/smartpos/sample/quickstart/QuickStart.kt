// The quick start of docs/android.md, whole: this file is that section's code block (a test,
// tools/cli/tests/docs_cli.rs, checks they are the same), compiled with -Werror by the Android
// sample's verification build (scripts/android-sample.sh) and run there by QuickStartTest
// against the SDK's host simulator. Copy it into your app and change what the comments say.
package com.smartpos.sample.quickstart

import android.content.Context
import android.content.SharedPreferences
import android.nfc.TagLostException
import android.nfc.tech.IsoDep
import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyProperties
import android.util.Base64
import com.smartpos.sdk.diagnosis
import com.smartpos.sdk.events
import com.smartpos.sdk.ffi.ApduTransport
import com.smartpos.sdk.ffi.CardTransportException
import com.smartpos.sdk.ffi.LoginResult
import com.smartpos.sdk.ffi.PinEntry
import com.smartpos.sdk.ffi.SecureStore
import com.smartpos.sdk.ffi.SmartPosException
import com.smartpos.sdk.ffi.Terminal
import com.smartpos.sdk.ffi.TerminalConfig
import com.smartpos.sdk.ffi.TerminalEvent
import com.smartpos.sdk.ffi.TlsConfig
import com.smartpos.sdk.ffi.TxnState
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.Job
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import java.io.File
import java.io.IOException
import java.security.KeyStore
import java.util.TimeZone
import javax.crypto.Cipher
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import javax.crypto.spec.GCMParameterSpec

/**
 * 1. Secrets. The SDK asks its [SecureStore] for `tmk` (the terminal master key, 16 or 24
 * bytes, which your provisioning step put there) and `journal_key` (32 bytes; the SDK creates
 * and stores it on the first open), and keeps `journal_guard` there (the journal's identity and
 * STAN reservation). This store keeps each value encrypted (AES-GCM) under a key that never
 * leaves Android Keystore, in the app's private preferences.
 */
class KeystoreSecureStore(private val prefs: SharedPreferences) : SecureStore {
    override fun get(name: String): ByteArray? {
        val blob = prefs.getString(name, null)?.let { Base64.decode(it, Base64.NO_WRAP) } ?: return null
        val cipher = Cipher.getInstance("AES/GCM/NoPadding")
        cipher.init(Cipher.DECRYPT_MODE, key(), GCMParameterSpec(128, blob, 0, IV_BYTES))
        return cipher.doFinal(blob, IV_BYTES, blob.size - IV_BYTES)
    }

    override fun put(name: String, value: ByteArray) {
        val cipher = Cipher.getInstance("AES/GCM/NoPadding")
        cipher.init(Cipher.ENCRYPT_MODE, key())
        val blob = cipher.iv + cipher.doFinal(value)
        // commit, not apply: the journal key and the guard must be on disk before the SDK goes on.
        if (!prefs.edit().putString(name, Base64.encodeToString(blob, Base64.NO_WRAP)).commit()) {
            throw IOException("secret $name not written")
        }
    }

    private fun key(): SecretKey {
        val keystore = KeyStore.getInstance("AndroidKeyStore").apply { load(null) }
        (keystore.getKey(ALIAS, null) as SecretKey?)?.let { return it }
        val spec = KeyGenParameterSpec.Builder(ALIAS, KeyProperties.PURPOSE_ENCRYPT or KeyProperties.PURPOSE_DECRYPT)
            .setBlockModes(KeyProperties.BLOCK_MODE_GCM)
            .setEncryptionPaddings(KeyProperties.ENCRYPTION_PADDING_NONE)
            .build()
        return KeyGenerator.getInstance(KeyProperties.KEY_ALGORITHM_AES, "AndroidKeyStore").run {
            init(spec)
            generateKey()
        }
    }

    private companion object {
        const val ALIAS = "smartpos-secrets"
        const val IV_BYTES = 12
    }
}

/**
 * 2. Configuration: the terminal and merchant ids and the host your acquirer gave you, its CA
 * certificate (PEM) for TLS, and the device's offset from UTC (fields 12/13 are local time).
 */
fun terminalConfig(tid: String, mid: String, host: String, tls: TlsConfig?): TerminalConfig =
    TerminalConfig(
        tid = tid,
        mid = mid,
        host = host,
        tls = tls,
        utcOffsetMinutes = TimeZone.getDefault().getOffset(System.currentTimeMillis()) / 60_000,
    )

/**
 * 3. Open the terminal and start the day, off the main thread: [Terminal.open] reads the
 * journal and the secure store, and [Terminal.login] runs PBKDF2 (both block), so they run on
 * [Dispatchers.IO]. One [Terminal] per data directory; close it (`use {}`) when the app ends.
 * The first login with the default password (supervisor `00`: `123456`, cashiers: `0000`) must
 * set a new one: [newPassword].
 */
suspend fun openAndSignIn(
    context: Context,
    config: TerminalConfig,
    store: SecureStore,
    operator: String,
    password: String,
    newPassword: String,
): Terminal = withContext(Dispatchers.IO) {
    val terminal = Terminal.open(config, File(context.filesDir, "smartpos").path, store, null)
    try {
        when (val login = terminal.login(operator, password)) {
            is LoginResult.LoggedIn -> Unit
            is LoginResult.MustChangePassword -> terminal.changePassword(login.operator, password, newPassword)
        }
        if (!terminal.isSignedIn()) terminal.signIn(operator) // working keys from the host
        terminal
    } catch (e: SmartPosException) {
        terminal.close()
        throw e
    }
}

/**
 * 4. The card: NFC `IsoDep` (from reader mode) as the SDK's [ApduTransport]. The SDK calls it on
 * its own worker thread and waits for each answer.
 */
class IsoDepTransport(private val isoDep: IsoDep) : ApduTransport {
    override fun transceive(apdu: ByteArray): ByteArray =
        try {
            if (!isoDep.isConnected) isoDep.connect()
            isoDep.transceive(apdu)
        } catch (e: TagLostException) {
            throw CardTransportException.CardRemoved("tag lost")
        } catch (e: IOException) {
            throw CardTransportException.Io(e.javaClass.simpleName)
        }
}

/** What the cashier sees after a sale. */
data class SaleOutcome(val approved: Boolean, val reference: String?, val message: String)

/**
 * 5. A contactless sale. [orderId] is the idempotency key: retrying with the same key (after a
 * crash, a timeout on your side) returns the recorded outcome and never charges twice. A
 * decline is a result; an exception means nothing was charged, or that a reversal is on its way
 * (its diagnosis says which). [pinEntry]: your PIN pad, when the card asks for a PIN.
 */
suspend fun sell(
    terminal: Terminal,
    transport: ApduTransport,
    pinEntry: PinEntry?,
    amount: ULong,
    orderId: String,
): SaleOutcome =
    try {
        val sale = terminal.saleContactless(amount, transport, pinEntry, orderId, null)
        val approved = sale.record.state == TxnState.APPROVED
        SaleOutcome(approved, sale.record.reference, sale.diagnosis?.titleEn ?: "Approved")
    } catch (e: SmartPosException) {
        SaleOutcome(false, null, e.diagnosis?.titleEn ?: e.toString())
    }

/** 6. Progress for the screen: present card, card read (the card may go), sending, ... */
fun showProgress(terminal: Terminal, scope: CoroutineScope, show: (String) -> Unit): Job =
    scope.launch {
        terminal.events().collect { event ->
            when (event) {
                is TerminalEvent.WaitingForCard -> show("Present card")
                is TerminalEvent.CardRead -> show("Card read: ${event.panMasked}")
                is TerminalEvent.Sending -> show("Processing")
                else -> Unit
            }
        }
    }
