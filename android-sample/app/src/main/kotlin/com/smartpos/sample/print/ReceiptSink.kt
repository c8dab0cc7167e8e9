package com.smartpos.sample.print

/** Outcome of one print job, as the cashier needs to hear it. */
enum class PrintStatus {
    /** All bytes reached the printer and it reported no fault. */
    PRINTED,

    /** Paper roll empty: load paper, then reprint. */
    OUT_OF_PAPER,

    /** Print head too hot (or another auto-recoverable fault): wait, then reprint. */
    OVERHEATED,

    /** The paper cover is open. */
    COVER_OPEN,

    /** No printer is connected or found. */
    NO_PRINTER,

    /**
     * The app may not use the printer yet: USB access asked just now, or the Bluetooth runtime
     * permission (`BLUETOOTH_CONNECT`, Android 12+) not granted. Grant it, then reprint.
     */
    NO_PERMISSION,

    /** Transfer failed half-way: the receipt may be incomplete. */
    FAILED,
}

/**
 * A receipt printer that takes raw ESC/POS bytes (the SDK renders the receipt, including the
 * GB18030 text and the QR code). The SDK bridge hands it to the core as its `ReceiptPrinter`.
 * Called on a background thread: implementations block.
 */
interface ReceiptSink {
    /** For the settings screen and logs, e.g. `Bluetooth SPP 00:11:22:33:44:55`. */
    val name: String

    /** Whether this printer is there now (bound service, attached device, bonded device). */
    fun isAvailable(): Boolean

    /** Prints [escpos]; never throws for printer faults, they are the returned status. */
    fun print(escpos: ByteArray): PrintStatus
}

/**
 * Picks the first available printer at print time, in the order given (typically the built-in
 * Sunmi printer, then USB, then Bluetooth), so a printer plugged in later is used.
 */
class PrinterSelector(private val candidates: List<ReceiptSink>) : ReceiptSink {
    override val name: String get() = current()?.name ?: "none"

    /** The printer that would be used now. */
    fun current(): ReceiptSink? = candidates.firstOrNull { it.isAvailable() }

    override fun isAvailable(): Boolean = current() != null

    override fun print(escpos: ByteArray): PrintStatus =
        current()?.print(escpos) ?: PrintStatus.NO_PRINTER
}
