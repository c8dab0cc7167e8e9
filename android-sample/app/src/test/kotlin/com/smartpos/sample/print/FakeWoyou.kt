package com.smartpos.sample.print

import android.os.Binder
import android.os.Parcel
import java.io.ByteArrayOutputStream

/**
 * A fake Sunmi print service behind a real Binder (shared by the printer and SDK bridge tests):
 * decodes the AIDL parcels of `sendRAWData` (records the bytes) and `updatePrinterState`
 * (answers [state]).
 */
internal class FakeWoyou(var state: Int) : Binder() {
    val received = ByteArrayOutputStream()

    override fun onTransact(code: Int, data: Parcel, reply: Parcel?, flags: Int): Boolean {
        data.enforceInterface(IWoyouService.DESCRIPTOR)
        when (code) {
            FIRST_CALL_TRANSACTION + 10 -> {
                received.write(data.createByteArray() ?: ByteArray(0))
                data.readStrongBinder()
                reply?.writeNoException()
            }
            FIRST_CALL_TRANSACTION + 32 -> {
                reply?.writeNoException()
                reply?.writeInt(state)
            }
            else -> return false
        }
        return true
    }
}
