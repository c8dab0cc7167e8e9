package com.smartpos.sample.print

import android.content.ComponentName
import android.content.Context
import android.content.Intent
import android.content.ServiceConnection
import android.os.IBinder
import android.os.RemoteException

/**
 * The built-in printer of Sunmi smart-POS devices (V2, P2, T2, ...), through its print service:
 * bind once with [bind], then [print] sends raw ESC/POS with `sendRAWData` and reads
 * `updatePrinterState` before and after to tell the cashier about paper, heat and cover.
 *
 * On other devices the bind fails and [isAvailable] stays false, so [PrinterSelector] moves on.
 */
class SunmiPrinter(
    private val codes: IWoyouService.TransactionCodes = IWoyouService.TransactionCodes(),
) : ReceiptSink {
    @Volatile
    private var service: IWoyouService? = null

    private val connection = object : ServiceConnection {
        override fun onServiceConnected(name: ComponentName?, binder: IBinder?) {
            service = IWoyouService.asInterface(binder, codes)
        }

        override fun onServiceDisconnected(name: ComponentName?) {
            service = null
        }
    }

    override val name: String get() = "Sunmi built-in printer"

    /** Binds to the print service; false when this is not a Sunmi device. */
    fun bind(context: Context): Boolean {
        val intent = Intent(IWoyouService.DESCRIPTOR).setPackage(IWoyouService.PACKAGE)
        return try {
            context.bindService(intent, connection, Context.BIND_AUTO_CREATE)
        } catch (e: SecurityException) {
            false
        }
    }

    /** Unbinds (Activity/Application teardown). */
    fun unbind(context: Context) {
        if (service != null) context.unbindService(connection)
        service = null
    }

    /** Uses [binder] directly (what `onServiceConnected` does); for tests and custom binding. */
    fun attach(binder: IBinder?) {
        service = IWoyouService.asInterface(binder, codes)
    }

    override fun isAvailable(): Boolean = service != null

    override fun print(escpos: ByteArray): PrintStatus {
        val s = service ?: return PrintStatus.NO_PRINTER
        return try {
            val before = statusOf(s.updatePrinterState())
            if (before != PrintStatus.PRINTED) return before
            val callback = WoyouCallback()
            s.sendRAWData(escpos, callback)
            if (callback.lastError != null) return PrintStatus.FAILED
            statusOf(s.updatePrinterState())
        } catch (e: RemoteException) {
            service = null
            PrintStatus.NO_PRINTER
        }
    }

    companion object {
        /** Maps `updatePrinterState()` codes (Sunmi printer service documentation) to [PrintStatus]. */
        fun statusOf(code: Int): PrintStatus = when (code) {
            1, 2 -> PrintStatus.PRINTED
            4 -> PrintStatus.OUT_OF_PAPER
            5 -> PrintStatus.OVERHEATED
            6 -> PrintStatus.COVER_OPEN
            505 -> PrintStatus.NO_PRINTER
            else -> PrintStatus.FAILED
        }
    }
}
