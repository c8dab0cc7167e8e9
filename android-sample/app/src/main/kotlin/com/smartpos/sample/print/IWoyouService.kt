package com.smartpos.sample.print

import android.os.Binder
import android.os.IBinder
import android.os.IInterface
import android.os.Parcel
import android.os.RemoteException

/**
 * The part of Sunmi's built-in printer service (`woyou.aidlservice.jiuiv5.IWoyouService`) this
 * app uses, written by hand in the shape `aidl` generates (interface + `asInterface` + proxy), so
 * the app needs neither the vendor AAR nor an .aidl build step.
 *
 * AIDL transaction codes are positions in the .aidl file. Facts from Sunmi's published
 * IWoyouService.aidl ("AIDL Version 2.1"): method 11 is `sendRAWData(in byte[], in ICallback)`
 * (stable across all published versions) and method 33 is `int updatePrinterState()` (its
 * position differs between service versions: pass [TransactionCodes] for other firmware).
 */
interface IWoyouService : IInterface {
    /** Prints raw ESC/POS bytes; [callback] (an [ICallback] binder) may be null. */
    @Throws(RemoteException::class)
    fun sendRAWData(data: ByteArray, callback: IBinder?)

    /**
     * The printer's state: 1 ok, 2 preparing, 3 communication error, 4 out of paper, 5 overheated,
     * 6 cover open, 7 cutter error, 8 cutter recovering, 505 no printer, 507 firmware update failed.
     */
    @Throws(RemoteException::class)
    fun updatePrinterState(): Int

    /** The transaction codes of the two methods. */
    data class TransactionCodes(
        val sendRawData: Int = IBinder.FIRST_CALL_TRANSACTION + 10,
        val updatePrinterState: Int = IBinder.FIRST_CALL_TRANSACTION + 32,
    )

    /** Client side: marshals calls into [remote] as the generated proxy would. */
    class Proxy(private val remote: IBinder, private val codes: TransactionCodes) : IWoyouService {
        override fun asBinder(): IBinder = remote

        override fun sendRAWData(data: ByteArray, callback: IBinder?) {
            call(codes.sendRawData) { it.writeByteArray(data); it.writeStrongBinder(callback) }
        }

        override fun updatePrinterState(): Int = call(codes.updatePrinterState) {}

        private fun call(code: Int, write: (Parcel) -> Unit): Int {
            val data = Parcel.obtain()
            val reply = Parcel.obtain()
            try {
                data.writeInterfaceToken(DESCRIPTOR)
                write(data)
                if (!remote.transact(code, data, reply, 0)) throw RemoteException("transaction $code refused")
                reply.readException()
                return if (reply.dataAvail() >= 4) reply.readInt() else 0
            } finally {
                reply.recycle()
                data.recycle()
            }
        }
    }

    companion object {
        /** The service's interface descriptor (also the bind action). */
        const val DESCRIPTOR: String = "woyou.aidlservice.jiuiv5.IWoyouService"

        /** The package that hosts the service on Sunmi devices. */
        const val PACKAGE: String = "woyou.aidlservice.jiuiv5"

        /** Wraps a binder from `onServiceConnected`. */
        fun asInterface(binder: IBinder?, codes: TransactionCodes = TransactionCodes()): IWoyouService? {
            if (binder == null) return null
            val local = binder.queryLocalInterface(DESCRIPTOR)
            if (local is IWoyouService) return local
            return Proxy(binder, codes)
        }
    }
}

/**
 * Receiver side of Sunmi's `oneway interface ICallback` (onRunResult=1, onReturnString=2,
 * onRaiseException=3, onPrintResult=4): records the last failure the service reports.
 */
class WoyouCallback : Binder() {
    /** The last `onRaiseException` code, or null. */
    @Volatile
    var lastError: Int? = null
        private set

    override fun onTransact(code: Int, data: Parcel, reply: Parcel?, flags: Int): Boolean {
        if (code == INTERFACE_TRANSACTION) {
            reply?.writeString(DESCRIPTOR)
            return true
        }
        data.enforceInterface(DESCRIPTOR)
        when (code) {
            FIRST_CALL_TRANSACTION -> if (data.readInt() == 0) lastError = -1
            FIRST_CALL_TRANSACTION + 2 -> lastError = data.readInt()
            FIRST_CALL_TRANSACTION + 3 -> data.readInt().let { if (it != 0) lastError = it }
            else -> Unit
        }
        return true
    }

    companion object {
        /** Descriptor of Sunmi's ICallback. */
        const val DESCRIPTOR: String = "woyou.aidlservice.jiuiv5.ICallback"
    }
}
