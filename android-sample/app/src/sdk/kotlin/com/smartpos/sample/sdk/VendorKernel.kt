package com.smartpos.sample.sdk

import com.smartpos.sdk.ffi.CardDecision
import com.smartpos.sdk.ffi.CardKernelException
import com.smartpos.sdk.ffi.CertifiedKernel
import com.smartpos.sdk.ffi.CryptogramType
import com.smartpos.sdk.ffi.HostAnswer
import com.smartpos.sdk.ffi.KernelCard
import com.smartpos.sdk.ffi.KernelRequest
import java.util.Locale
import java.util.concurrent.CompletableFuture
import java.util.concurrent.ExecutionException
import java.util.concurrent.TimeUnit
import java.util.concurrent.TimeoutException
import java.util.concurrent.atomic.AtomicReference

/**
 * The slot where a smart POS's certified EMV level-2 kernel (Sunmi PayLib `EMVOptV2`, PAX,
 * Newland) plugs into the SDK's certified kernel bridge (`CertifiedKernel`, see
 * `bindings/kotlin/README.md`, "Certified kernel bridge"). The sample links no vendor SDK:
 * subclass this for your device ([isReady], [readCard], [completeCard], [endTransaction]),
 * return it from `PosApp.vendorKernel()`, and [SdkGateway] takes every sale through
 * `Terminal.saleWithKernel` while [isReady] says the kernel can take one; otherwise the sale
 * goes through NFC or the mPOS reader (`saleContactless`) as before.
 *
 * The kernel reads the card (insert, tap, swipe) and takes the PIN on the device's PIN pad; the
 * SDK keeps the rest: the idempotency replay (a retried key never calls [read]), the "present
 * card" / "card read" events, the acceptance rules (a swiped chip card is refused: insert it),
 * the request, the reversal when the card declines after the host approved, the TC upload.
 *
 * Threads: [read], [complete] and [abort] (so [readCard], [completeCard], [endTransaction]) are
 * called on the terminal's worker thread, which may block. Vendor SDKs answer through
 * listeners on their own (binder) threads: start the vendor call inside [awaitVendor] and hand
 * the listener's answer to its [VendorReply]. Never call the terminal from here (a synchronous
 * terminal method throws `Busy` at once), and never wait for the main thread while it calls the
 * terminal synchronously.
 *
 * Method by method, Sunmi PayLib (`ReadCardOptV2`, `EMVOptV2`, `PinPadOptV2`) and PAX (Neptune
 * `IDAL` card readers and `IPed`, and PAX's EMV library; PAX method names differ between SDK
 * versions, so look for the step, not the exact name):
 *
 * [read] ([readCard]) — wait for the card, run the kernel up to its online request:
 * 1. Detect the card. Sunmi: `ReadCardOptV2.checkCard(cardTypes, CheckCardCallbackV2,
 *    timeoutSec)` with `cardTypes` from `request.allowed` (MAGNETIC / IC / NFC); the callback's
 *    `findMagCard(bundle)` is a swipe, `findICCard` an insert, `findRFCard` a tap, `onError(code,
 *    msg)` a failure. PAX: `IIcc.detect` / `IPicc.detect` / `IMag.isSwiped` + `IMag.read`.
 * 2. A swipe ends here: `KernelCard(entryMode = SWIPE, card = CardNumber(track2 = ...))`, with
 *    `chipFailed = true` (the SDK sends a fallback, field 22 `80x`) when this card's chip was
 *    just tried and could not be read. Do not refuse a swiped chip card yourself: the SDK does
 *    (`CardRefused(CHIP_CARD_SWIPED)`, "insert the card") and then calls [abort].
 * 3. Insert or tap: run the EMV transaction with the request's terminal data: amount 9F02
 *    (`request.amount`), other amount 9F03, type 9C (`request.txnType`), currency 5F2A, country
 *    9F1A, date 9A, time 9F21 and the SDK's unpredictable number 9F37 (where the kernel lets you
 *    set it: Sunmi `setTlvList(TLVOpCode.OP_NORMAL, tags, values)`), AIDs from `request.aids`.
 *    Sunmi: `EMVOptV2.transactProcess(EMVTransDataV2, EMVListenerV2)`, answering the listener:
 *    `onWaitAppSelect` -> `importAppSelect`, `onAppFinalSelect` -> `importAppFinalSelectStatus`,
 *    `onConfirmCardNo` -> `importCardNoStatus`, `onRequestShowPinPad` -> `PinPadOptV2.initPinPad`
 *    whose `onConfirm` gives the encrypted PIN block (then `importPinInputStatus`),
 *    `onCertVerify` -> `importCertStatus`, until `onOnlineProc`. PAX: the EMV library's
 *    application selection, read records, card authentication and the first GENERATE AC
 *    ("start transaction" returning ARQC), the PIN block from `IPed.getPinBlock`.
 * 4. At the online request read the tags (Sunmi `getTlvList(OP_NORMAL, tags, out)`, PAX "get
 *    TLV data" per tag) and return `KernelCard(entryMode = CHIP or CONTACTLESS, card =
 *    CardNumber(pan = 5A, track2 = 57, expiry = 5F24 as YYMM), verification, panSeq = 5F34,
 *    aid = 4F (or 84), appLabel = 50, iccData = the TLV of [ICC_TAGS] with 9F26 / 9F27 of the
 *    first GENERATE AC)`. `verification`: the PIN pad's block as
 *    `Verification.OnlinePin(PinBlock(block8))` (encrypted under the PIN key loaded into the
 *    device's PED; the PIN never reaches the app), or `Signature`, `NoCvm`, `ConsumerDevice`.
 *    The PAN and track 2 go straight into `CardNumber` (masked and zeroized in the SDK); keep
 *    the vendor's copies out of logs.
 * 5. Failures: the vendor's "card declined offline" (an AAC at the first GENERATE AC: Sunmi
 *    `onTransResult` before `onOnlineProc`) and errors as `CardKernelException.Kernel(code,
 *    reason)` with the vendor's code; no application / blocked / chip unreadable as
 *    `NotAccepted(reason)` (ask for a swipe: the next read is a fallback); `CardRemoved`,
 *    `Timeout` ([awaitVendor] throws it), `Aborted` (the cashier cancelled: [cancel]).
 *
 * [complete] ([completeCard]) — only for an inserted card, still in the reader: give the
 * host's answer to the kernel and return the card's final decision. [onlineResult] turns the
 * SDK's [HostAnswer] into the vendor's input: status approved / declined / unable to go online
 * (Sunmi `AidlConstantsV2.EMV.OnlineResult` 0 / 1 / 2) and the tags 8A (field 39), 89 (field
 * 38), 91 and the 71 / 72 scripts. Sunmi: `importOnlineProcStatus(status, tags, values, out)`, then
 * wait for `onTransResult`; PAX: the EMV library's "complete transaction" with the response
 * code, auth code, 91 and the scripts. Return `CardDecision(cryptogramType =
 * [cryptogramTypeOf] (9F27), cryptogram = 9F26, iccData = the final TLV of [ICC_TAGS],
 * scriptResults = DF31 (Sunmi) / 9F5B)`: TC makes the approval final (the SDK uploads it), AAC
 * makes the SDK reverse it (`TxnResult.declinedByCard`); an exception here reverses it too.
 *
 * [abort] — end the vendor's transaction ([endTransaction]: Sunmi
 * `ReadCardOptV2.cancelCheckCard()` and `EMVOptV2.abortTransactProcess()`; PAX: close the
 * card readers, the EMV library's cancel). The SDK calls it when the card is refused or
 * declined offline, the PIN is cancelled, or no final decision is needed (a tap, a swipe).
 *
 * @param stepTimeoutMs how long [awaitVendor] waits for one vendor step by default (the
 *   customer inserting the card, typing the PIN).
 */
abstract class VendorKernel(private val stepTimeoutMs: Long = 60_000) : CertifiedKernel {
    /** The vendor step the worker thread waits for in [awaitVendor]; null when none. */
    private val waiting = AtomicReference<CompletableFuture<*>?>(null)

    /**
     * Whether the device's kernel can take a sale now (Sunmi: PayLib connected,
     * `SunmiPayKernel.initPaySDK` -> `onConnectPaySDK`; PAX: the `IDAL` obtained). Asked by
     * [SdkGateway] before every sale, on the sale's thread: keep it cheap (a flag).
     */
    abstract fun isReady(): Boolean

    /** Reads the card up to the kernel's online request (see the class comment, [read] steps 1-5). */
    protected abstract fun readCard(request: KernelRequest): KernelCard

    /** The card's final decision for the host's [answer] (see the class comment, [complete]). */
    protected abstract fun completeCard(answer: HostAnswer): CardDecision

    /** Whether [readCard] runs: only then may the cashier's [cancel] end the vendor's step. */
    @Volatile
    private var reading = false

    /** The SDK asks for the card: [readCard], cancellable by the cashier while it waits. */
    final override fun read(request: KernelRequest): KernelCard {
        reading = true
        try {
            return readCard(request)
        } finally {
            reading = false
        }
    }

    /**
     * The SDK gives the card the host's answer: [completeCard]. Not cancellable: once the host
     * approved, only the card's decision (or a failure, which the SDK reverses) ends it.
     */
    final override fun complete(answer: HostAnswer): CardDecision = completeCard(answer)

    /**
     * Ends the vendor's transaction: Sunmi `cancelCheckCard()` + `abortTransactProcess()`; PAX
     * the card readers' close and the EMV library's cancel. Called by [abort], by [cancel] and
     * when a vendor step times out: it must be harmless when nothing runs.
     */
    protected abstract fun endTransaction()

    /** The SDK ends the kernel's transaction: a step still waiting ends too, then [endTransaction]. */
    final override fun abort() {
        waiting.get()?.completeExceptionally(CardKernelException.Aborted())
        endTransaction()
    }

    /**
     * The cashier cancelled "present card" (any thread): a step of [readCard] waiting in
     * [awaitVendor] ends with `CardKernelException.Aborted` (the sale throws `Cancelled`,
     * nothing sent) and the vendor stops looking for the card. False when no read step was
     * waiting (none ran, the card was read already, or the card is completing).
     */
    fun cancel(): Boolean {
        // The step first, then the phase: a step registered by completeCard is never taken.
        val step = waiting.get() ?: return false
        if (!reading) return false
        val ended = step.completeExceptionally(CardKernelException.Aborted())
        if (ended) endTransaction()
        return ended
    }

    /**
     * One vendor step, made synchronous for the SDK: [start] calls the vendor API and passes
     * [VendorReply] to its listener; this call blocks until the listener answers
     * ([VendorReply.ok] / [VendorReply.fail]), at most [timeoutMs] (then the vendor transaction
     * is ended and `CardKernelException.Timeout` thrown), or until [cancel] / [abort] end it
     * (`Aborted`). An exception [start] throws (a dead vendor service) reaches the SDK as is:
     * `CardKernelFailed(KERNEL)`, nothing sent.
     */
    protected fun <T> awaitVendor(timeoutMs: Long = stepTimeoutMs, start: (VendorReply<T>) -> Unit): T {
        val step = CompletableFuture<T>()
        waiting.set(step)
        try {
            start(VendorReply(step))
            return step.get(timeoutMs, TimeUnit.MILLISECONDS)
        } catch (e: TimeoutException) {
            step.completeExceptionally(CardKernelException.Timeout())
            endTransaction()
            throw CardKernelException.Timeout()
        } catch (e: ExecutionException) {
            throw e.cause ?: e
        } catch (e: InterruptedException) {
            Thread.currentThread().interrupt()
            throw CardKernelException.Aborted()
        } finally {
            waiting.compareAndSet(step, null)
        }
    }

    /** Where a vendor listener answers the step [awaitVendor] waits for (any thread, once). */
    class VendorReply<T> internal constructor(private val step: CompletableFuture<T>) {
        /** The step's result; false when the step already ended (cancelled, timed out). */
        fun ok(value: T): Boolean = step.complete(value)

        /** The step failed, e.g. `CardKernelException.Kernel(vendorCode, text)`. */
        fun fail(e: CardKernelException): Boolean = step.completeExceptionally(e)
    }

    /** The host's answer as a kernel's online-result input: [status] and tag/value pairs (hex). */
    data class OnlineResult(val status: OnlineStatus, val tags: List<String>, val values: List<String>)

    /** Sunmi `AidlConstantsV2.EMV.OnlineResult`: 0, 1, 2 in this order. */
    enum class OnlineStatus { APPROVED, DECLINED, UNABLE_TO_GO_ONLINE }

    companion object {
        /**
         * The chip data of field 55 to read from the kernel at the online request and after
         * completion (EMV Book 3 Annex A names; the usual CUP / Visa / Mastercard online set).
         */
        val ICC_TAGS: List<String> = listOf(
            "9F26", "9F27", "9F10", "9F37", "9F36", "95", "9A", "9C", "9F02", "5F2A", "82", "9F1A",
            "9F03", "9F33", "9F34", "9F35", "9F1E", "84", "9F09", "9F41",
        )

        /**
         * The host's [answer] for the kernel: approved / declined / unable to go online, and 8A
         * (the response code's two ASCII characters), 89 (the authorisation code in ASCII), 91
         * and each 71 / 72 script (the template's value, as Sunmi's `importOnlineProcStatus`
         * takes it; a kernel that takes whole templates, as PAX's "complete transaction" calls
         * usually do, gets `answer.scripts` as they are). A script whose template cannot be
         * parsed is left out (the card then reports no result for it).
         */
        fun onlineResult(answer: HostAnswer): OnlineResult {
            if (!answer.online) {
                return OnlineResult(OnlineStatus.UNABLE_TO_GO_ONLINE, emptyList(), emptyList())
            }
            val pairs = mutableListOf<Pair<String, ByteArray>>()
            answer.responseCode.takeIf { it.isNotEmpty() }?.let { pairs += "8A" to it.toByteArray(Charsets.US_ASCII) }
            answer.authCode?.takeIf { it.isNotEmpty() }?.let { pairs += "89" to it.toByteArray(Charsets.US_ASCII) }
            answer.issuerAuthData?.takeIf { it.isNotEmpty() }?.let { pairs += "91" to it }
            for (template in answer.scripts) scriptValue(template)?.let { pairs += it }
            val status = if (answer.approved) OnlineStatus.APPROVED else OnlineStatus.DECLINED
            return OnlineResult(status, pairs.map { it.first }, pairs.map { hex(it.second) })
        }

        /** The card's decision from its Cryptogram Information Data (9F27, bits 8-7). */
        fun cryptogramTypeOf(cid: Int): CryptogramType = when (cid and 0xC0) {
            0x40 -> CryptogramType.TC
            0x80 -> CryptogramType.ARQC
            // 00 is an AAC; 11 is reserved: treated as a decline, never as an approval.
            else -> CryptogramType.AAC
        }

        /** A 71 / 72 template's tag and value; null when it is not one or its length is wrong. */
        private fun scriptValue(template: ByteArray): Pair<String, ByteArray>? {
            if (template.size < 2) return null
            val tag = template[0].toInt() and 0xFF
            if (tag != 0x71 && tag != 0x72) return null
            val first = template[1].toInt() and 0xFF
            val (length, header) = when {
                first < 0x80 -> first to 2
                first == 0x81 && template.size >= 3 -> (template[2].toInt() and 0xFF) to 3
                first == 0x82 && template.size >= 4 ->
                    (((template[2].toInt() and 0xFF) shl 8) or (template[3].toInt() and 0xFF)) to 4
                else -> return null
            }
            if (header + length != template.size) return null
            return "%02X".format(Locale.ROOT, tag) to template.copyOfRange(header, template.size)
        }

        private fun hex(bytes: ByteArray): String =
            bytes.joinToString("") { "%02X".format(Locale.ROOT, it.toInt() and 0xFF) }
    }
}
