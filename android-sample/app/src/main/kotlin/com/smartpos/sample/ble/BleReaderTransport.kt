package com.smartpos.sample.ble

import android.annotation.SuppressLint
import android.bluetooth.BluetoothAdapter
import android.bluetooth.BluetoothDevice
import android.bluetooth.BluetoothGatt
import android.bluetooth.BluetoothGattCallback
import android.bluetooth.BluetoothGattCharacteristic
import android.bluetooth.BluetoothGattDescriptor
import android.bluetooth.BluetoothProfile
import android.bluetooth.le.ScanCallback
import android.bluetooth.le.ScanFilter
import android.bluetooth.le.ScanResult
import android.bluetooth.le.ScanSettings
import android.content.Context
import android.os.Build
import android.os.ParcelUuid
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.MutableSharedFlow
import kotlinx.coroutines.flow.asSharedFlow
import kotlinx.coroutines.suspendCancellableCoroutine
import kotlinx.coroutines.withTimeout
import java.util.UUID
import kotlin.coroutines.resume

/** The GATT layout of an mPOS reader: one service, a write characteristic, a notify characteristic. */
data class ReaderProfile(
    /** Service advertised by the reader (scan filter). */
    val service: UUID,
    /** Characteristic the terminal writes frames to (write with response). */
    val write: UUID,
    /** Characteristic the reader notifies frames on. */
    val notify: UUID,
)

/**
 * BLE GATT transport to the mPOS reader: scan with a service filter, connect, request a larger
 * MTU, discover services, enable notifications (CCCD write), then writes with response.
 *
 * GATT allows one outstanding operation at a time, and the stack answers each through
 * [BluetoothGattCallback]; the callback only posts events to a channel and the suspend functions
 * here wait for the event that answers their operation, so the sequence reads top to bottom and
 * a callback delivered synchronously (as some stacks and Robolectric do) is handled the same way.
 *
 * minSdk is 26: the GATT calls that take the value (`writeCharacteristic(c, value, type)`,
 * `writeDescriptor(d, value)`, the three-argument `onCharacteristicChanged`) exist from API 33;
 * below it the deprecated ones (value set on the characteristic/descriptor) are used.
 *
 * Needs the permissions of [BlePermissions].
 */
@SuppressLint("MissingPermission")
class BleReaderTransport(
    private val context: Context,
    private val adapter: BluetoothAdapter,
    private val profile: ReaderProfile,
    private val desiredMtu: Int = 247,
    private val opTimeoutMs: Long = 10_000,
) {
    /**
     * Scans for a reader advertising the profile's service; the first found wins.
     *
     * @throws BluetoothPermissionException [BlePermissions.required] not granted (ask first).
     */
    suspend fun scan(timeoutMs: Long = 15_000): BluetoothDevice {
        checkGranted(BlePermissions.required())
        val scanner = adapter.bluetoothLeScanner ?: throw ReaderLinkException("Bluetooth is off")
        val filters = listOf(ScanFilter.Builder().setServiceUuid(ParcelUuid(profile.service)).build())
        val settings = ScanSettings.Builder().setScanMode(ScanSettings.SCAN_MODE_LOW_LATENCY).build()
        return withTimeout(timeoutMs) {
            suspendCancellableCoroutine { cont ->
                val callback = object : ScanCallback() {
                    override fun onScanResult(callbackType: Int, result: ScanResult) {
                        if (cont.isActive) {
                            scanner.stopScan(this)
                            cont.resume(result.device)
                        }
                    }

                    override fun onScanFailed(errorCode: Int) {
                        if (cont.isActive) {
                            cont.resumeWith(Result.failure(ReaderLinkException("scan failed: $errorCode")))
                        }
                    }
                }
                permissionChecked { scanner.startScan(filters, settings, callback) }
                cont.invokeOnCancellation { runCatching { scanner.stopScan(callback) } }
            }
        }
    }

    /**
     * Connects to [device] and prepares the link; returns the open channel.
     *
     * @throws BluetoothPermissionException [BlePermissions.connect] not granted (ask first).
     */
    suspend fun connect(device: BluetoothDevice): ReaderChannel {
        checkGranted(BlePermissions.connect())
        val link = GattLink(profile, opTimeoutMs)
        val gatt = permissionChecked { device.connectGatt(context, false, link.callback, BluetoothDevice.TRANSPORT_LE) }
            ?: throw ReaderLinkException("connectGatt refused")
        try {
            permissionChecked { link.open(gatt, desiredMtu) }
        } catch (e: Throwable) {
            gatt.close()
            throw e
        }
        return link
    }

    /** Fails with [BluetoothPermissionException] when [permissions] are not all granted. */
    private fun checkGranted(permissions: List<String>) {
        val missing = BlePermissions.missing(context, permissions)
        if (missing.isNotEmpty()) throw BluetoothPermissionException(missing)
    }

    /** Runs [call]; a permission revoked meanwhile (SecurityException) is [BluetoothPermissionException]. */
    private inline fun <T> permissionChecked(call: () -> T): T =
        try {
            call()
        } catch (e: SecurityException) {
            throw BluetoothPermissionException(BlePermissions.missing(context, BlePermissions.required()))
        }
}

/** Events the GATT callback posts; the link's suspend functions wait for them. */
private sealed interface GattEvent {
    data class Connection(val status: Int, val state: Int) : GattEvent
    data class Mtu(val mtu: Int, val status: Int) : GattEvent
    data class Services(val status: Int) : GattEvent
    data class DescriptorWritten(val status: Int) : GattEvent
    data class Written(val status: Int) : GattEvent
}

@SuppressLint("MissingPermission")
private class GattLink(private val profile: ReaderProfile, private val opTimeoutMs: Long) : ReaderChannel {
    private val events = Channel<GattEvent>(Channel.UNLIMITED)
    private val incoming = MutableSharedFlow<ByteArray>(extraBufferCapacity = 64)
    private lateinit var gatt: BluetoothGatt
    private lateinit var writeChar: BluetoothGattCharacteristic
    private var mtu = 23

    val callback = object : BluetoothGattCallback() {
        override fun onConnectionStateChange(g: BluetoothGatt, status: Int, newState: Int) {
            events.trySend(GattEvent.Connection(status, newState))
        }

        override fun onMtuChanged(g: BluetoothGatt, mtu: Int, status: Int) {
            events.trySend(GattEvent.Mtu(mtu, status))
        }

        override fun onServicesDiscovered(g: BluetoothGatt, status: Int) {
            events.trySend(GattEvent.Services(status))
        }

        override fun onDescriptorWrite(g: BluetoothGatt, d: BluetoothGattDescriptor, status: Int) {
            events.trySend(GattEvent.DescriptorWritten(status))
        }

        override fun onCharacteristicWrite(g: BluetoothGatt, c: BluetoothGattCharacteristic, status: Int) {
            events.trySend(GattEvent.Written(status))
        }

        // Android 13 (API 33) and later: the value comes with the call (and the deprecated
        // overload below is not called, as this one does not call super).
        override fun onCharacteristicChanged(g: BluetoothGatt, c: BluetoothGattCharacteristic, value: ByteArray) {
            received(c, value)
        }

        // Android 8 to 12L only call this one; the value is in the characteristic.
        @Deprecated("Used by the stack below API 33 only")
        override fun onCharacteristicChanged(g: BluetoothGatt, c: BluetoothGattCharacteristic) {
            if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.TIRAMISU) return
            @Suppress("DEPRECATION")
            val value = c.value ?: return
            received(c, value)
        }
    }

    private fun received(c: BluetoothGattCharacteristic, value: ByteArray) {
        if (c.uuid == profile.notify) incoming.tryEmit(value.copyOf())
    }

    override val maxChunk: Int get() = mtu - 3

    override val notifications: Flow<ByteArray> = incoming.asSharedFlow()

    suspend fun open(g: BluetoothGatt, desiredMtu: Int) {
        gatt = g
        val conn = await<GattEvent.Connection>()
        if (conn.status != BluetoothGatt.GATT_SUCCESS || conn.state != BluetoothProfile.STATE_CONNECTED) {
            throw ReaderLinkException("connect failed: status ${conn.status}")
        }
        if (g.requestMtu(desiredMtu)) {
            val m = await<GattEvent.Mtu>()
            // A reader may refuse: keep the default 23 then. Never trust a value below it.
            if (m.status == BluetoothGatt.GATT_SUCCESS && m.mtu >= 23) mtu = minOf(m.mtu, 517)
        }
        if (!g.discoverServices()) throw ReaderLinkException("service discovery refused")
        val s = await<GattEvent.Services>()
        if (s.status != BluetoothGatt.GATT_SUCCESS) throw ReaderLinkException("discovery failed: ${s.status}")
        val service = g.getService(profile.service) ?: throw ReaderLinkException("reader service missing")
        writeChar = service.getCharacteristic(profile.write) ?: throw ReaderLinkException("write characteristic missing")
        val notifyChar = service.getCharacteristic(profile.notify)
            ?: throw ReaderLinkException("notify characteristic missing")
        if (!g.setCharacteristicNotification(notifyChar, true)) throw ReaderLinkException("notifications refused")
        val cccd = notifyChar.getDescriptor(CCCD) ?: throw ReaderLinkException("CCCD missing")
        val value = BluetoothGattDescriptor.ENABLE_NOTIFICATION_VALUE
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.TIRAMISU) {
            val rc = g.writeDescriptor(cccd, value)
            if (rc != BluetoothGatt.GATT_SUCCESS) throw ReaderLinkException("CCCD write refused: $rc")
        } else {
            @Suppress("DEPRECATION")
            cccd.value = value
            @Suppress("DEPRECATION")
            if (!g.writeDescriptor(cccd)) throw ReaderLinkException("CCCD write refused")
        }
        val d = await<GattEvent.DescriptorWritten>()
        if (d.status != BluetoothGatt.GATT_SUCCESS) throw ReaderLinkException("CCCD write failed: ${d.status}")
    }

    override suspend fun write(chunk: ByteArray) {
        require(chunk.size <= maxChunk) { "chunk of ${chunk.size} bytes over ${maxChunk}" }
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.TIRAMISU) {
            val rc = gatt.writeCharacteristic(writeChar, chunk, BluetoothGattCharacteristic.WRITE_TYPE_DEFAULT)
            if (rc != BluetoothGatt.GATT_SUCCESS) throw ReaderLinkException("write refused: $rc")
        } else {
            writeChar.writeType = BluetoothGattCharacteristic.WRITE_TYPE_DEFAULT
            @Suppress("DEPRECATION")
            writeChar.value = chunk
            @Suppress("DEPRECATION")
            if (!gatt.writeCharacteristic(writeChar)) throw ReaderLinkException("write refused")
        }
        val w = await<GattEvent.Written>()
        if (w.status != BluetoothGatt.GATT_SUCCESS) throw ReaderLinkException("write failed: ${w.status}")
    }

    override fun close() {
        gatt.disconnect()
        gatt.close()
        events.close()
    }

    /** Waits for the next event of type [T]; a disconnection on the way fails the operation. */
    private suspend inline fun <reified T : GattEvent> await(): T = withTimeout(opTimeoutMs) {
        while (true) {
            val e = events.receive()
            if (e is T) return@withTimeout e
            if (e is GattEvent.Connection && e.state == BluetoothProfile.STATE_DISCONNECTED) {
                throw ReaderLinkException("reader disconnected")
            }
        }
        @Suppress("UNREACHABLE_CODE")
        throw IllegalStateException()
    }

    companion object {
        /** Client Characteristic Configuration descriptor (Bluetooth assigned number 0x2902). */
        val CCCD: UUID = UUID.fromString("00002902-0000-1000-8000-00805f9b34fb")
    }
}
