package com.smartpos.sample.sdk

import android.app.Activity
import android.app.AlertDialog
import android.app.Application
import android.nfc.TagLostException
import android.os.Bundle
import android.text.InputType
import android.view.WindowManager
import android.widget.EditText
import com.smartpos.sample.ble.ReaderChannel
import com.smartpos.sample.nfc.ApduChannel
import com.smartpos.sample.nfc.CardRemovedException
import com.smartpos.sample.nfc.NfcCardReader
import com.smartpos.sample.nfc.NfcUnavailableException
import com.smartpos.sample.print.PrintStatus
import com.smartpos.sample.print.ReceiptSink
import com.smartpos.sample.ui.Texts
import com.smartpos.sdk.ffi.ApduTransport
import com.smartpos.sdk.ffi.CallbackException
import com.smartpos.sdk.ffi.CardTransportException
import com.smartpos.sdk.ffi.MposReader
import com.smartpos.sdk.ffi.PinEntry
import com.smartpos.sdk.ffi.PinInput
import com.smartpos.sdk.ffi.PrintJob
import com.smartpos.sdk.ffi.PrinterStatus
import com.smartpos.sdk.ffi.ReaderLink
import com.smartpos.sdk.ffi.SmartPosException
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.Job
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withContext
import kotlinx.coroutines.withTimeout
import java.io.IOException
import java.util.Locale
import java.util.concurrent.CompletableFuture
import java.util.concurrent.TimeUnit
import java.util.concurrent.TimeoutException

/**
 * The app's contactless channel ([ApduChannel]: `IsoDep` through
 * [com.smartpos.sample.nfc.IsoDepChannel]) as the SDK's [ApduTransport]. APDUs are relayed
 * unchanged; a lost tag becomes [CardTransportException.CardRemoved] (the SDK stops the card
 * read and sends nothing), any other I/O failure [CardTransportException.Io]. Called on the
 * terminal's worker thread; blocks while the card answers. Errors carry no APDU data.
 */
class IsoDepApduTransport(private val channel: ApduChannel) : ApduTransport {
    override fun transceive(apdu: ByteArray): ByteArray =
        try {
            channel.transceive(apdu)
        } catch (e: TagLostException) {
            throw CardTransportException.CardRemoved("tag lost")
        } catch (e: CardRemovedException) {
            throw CardTransportException.CardRemoved("card left the field")
        } catch (e: CardTransportException) {
            throw e
        } catch (e: IOException) {
            throw CardTransportException.Io(e.javaClass.simpleName + ": " + (e.message ?: "card I/O"))
        }
}

/**
 * One card presentation: the [transport] the SDK reads the card through, and what to release
 * when the sale is over ([close]).
 */
class CardSession(val transport: ApduTransport, private val release: () -> Unit = {}) : AutoCloseable {
    override fun close() = release()
}

/**
 * The card of one contactless sale, asked for only when the SDK first talks to it: the first
 * [transceive] waits for the customer's card ([CardSource.present]: NFC reader mode and the tap,
 * or the mPOS reader), the next ones go to that card. The SDK answers a known idempotency key
 * from its journal (and refuses a terminal that is not signed in) before it sends any APDU, so
 * a replayed sale never turns NFC on and the app asks nothing before the SDK does.
 *
 * Called on the terminal's worker thread, which may block while the customer taps. Why no card
 * came (NFC off or missing, no tap in time, the cashier cancelled: an [IOException] from
 * [CardSource.present]) is kept in [failure]: the SDK only sees a [CardTransportException]
 * and fails the sale with its generic "card read failed"; the gateway shows the cause instead.
 * [close] ends the card session, and a wait for a card that is still running.
 */
class LazyCardTransport(private val cards: CardSource, private val amount: Long) : ApduTransport, AutoCloseable {
    private val lock = Any()
    private var session: CardSession? = null
    private var waiting = false
    private var closed = false

    /** Why the card could not be presented; null when it was (or was never asked for). */
    @Volatile
    var failure: IOException? = null
        private set

    override fun transceive(apdu: ByteArray): ByteArray = card().transceive(apdu)

    private fun card(): ApduTransport {
        synchronized(lock) {
            session?.let { return it.transport }
            if (closed || failure != null) throw CardTransportException.CardRemoved("card session over")
            waiting = true
        }
        val presented = try {
            runBlocking { cards.present(amount) }
        } catch (e: IOException) {
            failure = e
            throw CardTransportException.Timeout("no card presented: ${e.javaClass.simpleName}")
        } finally {
            synchronized(lock) { waiting = false }
        }
        synchronized(lock) {
            if (!closed) {
                session = presented
                return presented.transport
            }
        }
        // The sale ended (the app gave up) while the customer tapped: release the card at once.
        presented.close()
        throw CardTransportException.CardRemoved("card session over")
    }

    /** Ends the card session; a wait for the card still running is cancelled (no card, nothing sent). */
    override fun close() {
        val (open, wasWaiting) = synchronized(lock) {
            closed = true
            (session.also { session = null }) to waiting
        }
        if (wasWaiting) cards.cancel()
        open?.close()
    }
}

/** Where the card of a contactless sale comes from: the NFC controller or the mPOS reader. */
fun interface CardSource {
    /**
     * Waits until the customer presents a card for [amount] minor units; cancellable.
     *
     * @throws NfcUnavailableException NFC is missing or off (the UI says so).
     * @throws IOException no card (reader link lost, no card in time).
     */
    suspend fun present(amount: Long): CardSession

    /** Stops a running [present] (the cashier cancelled): it throws an [IOException]. False when none ran. */
    fun cancel(): Boolean = false
}

/**
 * Cards tapped on the device's NFC controller: reader mode on the foreground [activity] (or the
 * next one to resume: [NfcCardReader] follows the activity lifecycle) until a card with ISO-DEP
 * connects, then [IsoDepApduTransport] over its channel. Reader mode stays on for the whole card
 * session and goes off when the session is closed. No tap in time, or [cancel], is an
 * [IOException] (no card, nothing sent).
 */
class NfcCardSource(private val nfc: NfcCardReader, private val activity: () -> Activity?) : CardSource {
    override suspend fun present(amount: Long): CardSession {
        val channel = nfc.awaitCard(activity())
        return CardSession(IsoDepApduTransport(channel)) {
            channel.close()
            nfc.finished()
        }
    }

    override fun cancel(): Boolean = nfc.cancelWait()
}

/**
 * Cards presented on the Bluetooth mPOS reader: shows the amount on its display, polls for a
 * card for up to [waitMs], then the reader's own [ApduTransport] (from the SDK's [MposReader]).
 */
class MposCardSource(private val reader: () -> MposReader?, private val waitMs: Long = 30_000) : CardSource {
    override suspend fun present(amount: Long): CardSession = withContext(Dispatchers.IO) {
        val r = reader() ?: throw IOException("no mPOS reader connected")
        try {
            r.displayText(String.format(Locale.ROOT, "%d.%02d", amount / 100, amount % 100))
            if (!r.waitForCard(waitMs.toULong())) throw IOException("no card on the reader in time")
        } catch (e: SmartPosException) {
            throw IOException("mPOS reader: ${e.javaClass.simpleName}", e)
        }
        CardSession(r.transport()) { runCatching { r.deactivate() } }
    }
}

/**
 * The BLE GATT link of the mPOS reader ([ReaderChannel] from
 * [com.smartpos.sample.ble.BleReaderTransport]) bridged to the SDK: the SDK's [ReaderLink]
 * writes each chunk with response, GATT notifications are pushed into the reader's
 * `ChunkSender`, and the negotiated MTU sets the chunk size. [reader] then gives the
 * [ApduTransport] of a reader sale (`reader.transport()`).
 *
 * @param scope runs the notification pump (until [close]).
 * @param writeTimeoutMs limit for one acknowledged write; a lost write is retransmitted by the
 *   SDK's link protocol.
 */
class BleMposBridge(
    private val channel: ReaderChannel,
    scope: CoroutineScope,
    private val writeTimeoutMs: Long = 2_000,
) : AutoCloseable {
    private val link = object : ReaderLink {
        override fun write(chunk: ByteArray) {
            try {
                runBlocking { withTimeout(writeTimeoutMs) { channel.write(chunk) } }
            } catch (e: Exception) {
                throw CallbackException.Failed("BLE write failed: ${e.javaClass.simpleName}")
            }
        }
    }

    /** The SDK's reader over this link (ATT MTU = the channel's chunk size + 3). */
    val reader: MposReader = MposReader(link, (channel.maxChunk + ATT_HEADER).coerceIn(MIN_MTU, MAX_MTU).toUShort())

    private val notificationPump: Job = pump(scope, channel.notifications) { reader.chunkSender().push(it) }

    /** The reader as the card transport of `saleContactless`. */
    fun transport(): ApduTransport = reader.transport()

    /** Stops the pump, frees the reader and disconnects. */
    override fun close() {
        notificationPump.cancel()
        reader.close()
        channel.close()
    }

    companion object {
        private const val ATT_HEADER = 3
        private const val MIN_MTU = 23
        private const val MAX_MTU = 517

        /** Hands every notification to [push] in arrival order, on [scope], until cancelled. */
        fun pump(scope: CoroutineScope, notifications: Flow<ByteArray>, push: (ByteArray) -> Boolean): Job =
            scope.launch { notifications.collect { push(it) } }
    }
}

/**
 * The app's printer ([ReceiptSink]: Bluetooth SPP, USB, the Sunmi built-in printer, or the
 * [com.smartpos.sample.print.PrinterSelector] that picks the available one at print time) as the
 * SDK's [ReceiptPrinter]: sends the SDK's ESC/POS bytes and maps the printer's status.
 * Called on the caller's thread of `print` / `reprint` (the gateway uses `Dispatchers.IO`).
 */
class EscPosReceiptPrinter(private val sink: ReceiptSink) : com.smartpos.sdk.ffi.ReceiptPrinter {
    /**
     * The app's status of the last job: the SDK's [PrinterStatus] has no "permission missing",
     * so [SdkGateway] reads it here to tell the cashier ([PrintStatus.NO_PERMISSION] is `BUSY`).
     */
    @Volatile
    var lastStatus: PrintStatus? = null
        private set

    override fun print(job: PrintJob): PrinterStatus = statusOf(sink.print(job.escpos).also { lastStatus = it })

    companion object {
        /**
         * The SDK's status for a printer's: a missing permission (USB asked just now, Bluetooth
         * runtime permission not granted) is [PrinterStatus.BUSY] (try again once granted); a transfer that failed half-way counts as
         * [PrinterStatus.NO_PRINTER] (offline). Either way the receipt stays pending for a reprint.
         */
        fun statusOf(status: PrintStatus): PrinterStatus = when (status) {
            PrintStatus.PRINTED -> PrinterStatus.OK
            PrintStatus.OUT_OF_PAPER -> PrinterStatus.OUT_OF_PAPER
            PrintStatus.OVERHEATED -> PrinterStatus.OVERHEATED
            PrintStatus.COVER_OPEN -> PrinterStatus.COVER_OPEN
            PrintStatus.NO_PRINTER, PrintStatus.FAILED -> PrinterStatus.NO_PRINTER
            PrintStatus.NO_PERMISSION -> PrinterStatus.BUSY
        }
    }
}

/** A PIN pad that always types [digits] (or cancels when null): for tests and demos. */
class FixedPinEntry(private val digits: String?) : PinEntry {
    override fun requestPin(maskedPan: String, amount: ULong): PinInput =
        if (digits == null) PinInput.cancelled() else PinInput.digits(digits)
}

/**
 * The cardholder types the PIN in a dialog on the foreground [activity]. The SDK calls this on
 * its worker thread; the dialog runs on the main thread and this call waits for it (at most
 * [timeoutMs]). The digits go into the SDK's `PinInput` at once; no activity, a cancel, a
 * dismissal (back, touch outside, the activity going away) or a timeout is a cancellation
 * (nothing is sent), so the sale never waits for a dialog that is gone.
 */
class DialogPinEntry(
    private val activity: () -> Activity?,
    private val timeoutMs: Long = 60_000,
) : PinEntry {
    override fun requestPin(maskedPan: String, amount: ULong): PinInput {
        val digits = askDigits(maskedPan, amount) ?: return PinInput.cancelled()
        return try {
            PinInput.digits(digits)
        } catch (_: SmartPosException) {
            // Not 4 to 12 digits: the SDK refuses it; treated as a cancellation.
            PinInput.cancelled()
        }
    }

    /** Shows the dialog and waits for it: the typed digits, or null when cancelled in any way. */
    internal fun askDigits(maskedPan: String, amount: ULong): String? {
        val a = activity()?.takeUnless { it.isFinishing || it.isDestroyed } ?: return null
        val texts = Texts(a.resources.configuration.locales[0])
        val answer = CompletableFuture<String?>()
        // The activity going away dismisses nothing by itself: end the wait and close the dialog.
        var dialog: AlertDialog? = null
        val lifecycle = object : Application.ActivityLifecycleCallbacks {
            override fun onActivityDestroyed(activity: Activity) {
                if (activity === a) {
                    answer.complete(null)
                    dialog?.dismiss()
                }
            }

            override fun onActivityCreated(activity: Activity, savedInstanceState: Bundle?) = Unit
            override fun onActivityStarted(activity: Activity) = Unit
            override fun onActivityResumed(activity: Activity) = Unit
            override fun onActivityPaused(activity: Activity) = Unit
            override fun onActivityStopped(activity: Activity) = Unit
            override fun onActivitySaveInstanceState(activity: Activity, outState: Bundle) = Unit
        }
        a.runOnUiThread {
            if (a.isFinishing || a.isDestroyed) {
                answer.complete(null)
                return@runOnUiThread
            }
            a.application.registerActivityLifecycleCallbacks(lifecycle)
            val field = EditText(a).apply {
                inputType = InputType.TYPE_CLASS_NUMBER or InputType.TYPE_NUMBER_VARIATION_PASSWORD
            }
            val d = AlertDialog.Builder(a)
                .setTitle("${texts.enterPin}  $maskedPan  ${amount / 100u}.${(amount % 100u).toString().padStart(2, '0')}")
                .setView(field)
                .setPositiveButton(texts.ok) { _, _ -> answer.complete(field.text.toString()) }
                .setNegativeButton(texts.cancel) { _, _ -> answer.complete(null) }
                .setOnCancelListener { answer.complete(null) }
                // After a button the answer is already there; any other dismissal cancels.
                .setOnDismissListener { answer.complete(null) }
                .create()
            dialog = d
            try {
                d.show()
            } catch (_: WindowManager.BadTokenException) {
                // The activity's window went away between the check and show().
                answer.complete(null)
            }
        }
        val digits = try {
            answer.get(timeoutMs, TimeUnit.MILLISECONDS)
        } catch (_: TimeoutException) {
            null
        } catch (_: InterruptedException) {
            Thread.currentThread().interrupt()
            null
        }
        a.runOnUiThread {
            a.application.unregisterActivityLifecycleCallbacks(lifecycle)
            // A timeout leaves the dialog up: take it down (the answer is already settled).
            dialog?.takeIf { it.isShowing }?.dismiss()
        }
        return digits
    }
}
