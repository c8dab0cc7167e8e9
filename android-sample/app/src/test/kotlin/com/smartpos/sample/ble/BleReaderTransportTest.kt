package com.smartpos.sample.ble

import android.Manifest
import android.bluetooth.BluetoothGatt
import android.bluetooth.BluetoothGattCharacteristic
import android.bluetooth.BluetoothGattDescriptor
import android.bluetooth.BluetoothGattService
import android.bluetooth.BluetoothManager
import android.bluetooth.BluetoothProfile
import android.os.Build
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.async
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import kotlinx.coroutines.yield
import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Before
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.RobolectricTestRunner
import org.robolectric.RuntimeEnvironment
import org.robolectric.Shadows.shadowOf
import org.robolectric.annotation.Config
import org.robolectric.annotation.Implementation
import org.robolectric.annotation.Implements
import org.robolectric.shadows.ShadowBluetoothGatt
import org.robolectric.util.ReflectionHelpers
import java.util.UUID

/**
 * A GATT as on Android 8 to 12L when the test lowers `Build.VERSION.SDK_INT` below 33: the
 * API 33 calls do not exist there (calling them is a NoSuchMethodError on a device).
 */
@Implements(BluetoothGatt::class)
class PreTiramisuGatt : ShadowBluetoothGatt() {
    @Implementation
    override fun writeDescriptor(descriptor: BluetoothGattDescriptor, value: ByteArray): Int {
        if (Build.VERSION.SDK_INT < Build.VERSION_CODES.TIRAMISU) throw NoSuchMethodError("writeDescriptor(BluetoothGattDescriptor, byte[])")
        return super.writeDescriptor(descriptor, value)
    }

    @Implementation
    override fun writeCharacteristic(characteristic: BluetoothGattCharacteristic, value: ByteArray, writeType: Int): Int {
        if (Build.VERSION.SDK_INT < Build.VERSION_CODES.TIRAMISU) throw NoSuchMethodError("writeCharacteristic(BluetoothGattCharacteristic, byte[], int)")
        return super.writeCharacteristic(characteristic, value, writeType)
    }
}

@RunWith(RobolectricTestRunner::class)
@Config(shadows = [PreTiramisuGatt::class])
class BleReaderTransportTest {
    private val app = RuntimeEnvironment.getApplication()
    private val profile = ReaderProfile(
        service = UUID.fromString("0000fff0-0000-1000-8000-00805f9b34fb"),
        write = UUID.fromString("0000fff2-0000-1000-8000-00805f9b34fb"),
        notify = UUID.fromString("0000fff1-0000-1000-8000-00805f9b34fb"),
    )

    @Before
    fun granted() {
        shadowOf(app).grantPermissions(*BlePermissions.required().toTypedArray())
    }

    @Test
    fun connects_requests_mtu_enables_notifications_and_writes_in_chunks() = runBlocking {
        val (service, notifyChar, cccd) = readerService()
        val (channel, gatt) = connectThroughShadow("AA:BB:CC:DD:EE:01", service, notifyChar)
        val fake = shadowOf(gatt)
        @Suppress("DEPRECATION") // the shadow stores the written CCCD value there
        assertArrayEquals(BluetoothGattDescriptor.ENABLE_NOTIFICATION_VALUE, cccd.value)
        assertEquals(182, channel.maxChunk)

        val frame = ByteArray(400) { it.toByte() }
        channel.writeFrame(frame)
        assertArrayEquals(frame.copyOfRange(364, 400), fake.latestWrittenBytes)

        val incoming = async(start = CoroutineStart.UNDISPATCHED) { channel.notifications.first() }
        fake.gattCallback.onCharacteristicChanged(gatt, notifyChar, byteArrayOf(0x02, 0x00, 0x01, 0x03))
        assertArrayEquals(byteArrayOf(0x02, 0x00, 0x01, 0x03), incoming.await())
        channel.close()
        assertTrue(fake.isClosed)
    }

    @Test
    fun a_refused_connection_fails_the_connect() = runBlocking {
        val adapter = app.getSystemService(BluetoothManager::class.java).adapter
        val device = adapter.getRemoteDevice("AA:BB:CC:DD:EE:02")
        val transport = BleReaderTransport(app, adapter, profile, opTimeoutMs = 5_000)
        val connecting = async(start = CoroutineStart.UNDISPATCHED) { runCatching { transport.connect(device) } }
        val gatt = shadowOf(device).bluetoothGatts.single()
        shadowOf(gatt).gattCallback.onConnectionStateChange(gatt, 133, BluetoothProfile.STATE_DISCONNECTED)
        val e = connecting.await().exceptionOrNull()
        assertTrue("$e", e is ReaderLinkException)
    }

    @Test
    fun runtime_permissions_follow_the_android_version() {
        assertEquals(
            listOf(Manifest.permission.BLUETOOTH_SCAN, Manifest.permission.BLUETOOTH_CONNECT),
            BlePermissions.required(Build.VERSION_CODES.S),
        )
        assertEquals(listOf(Manifest.permission.ACCESS_FINE_LOCATION), BlePermissions.required(Build.VERSION_CODES.R))
        shadowOf(app).denyPermissions(*BlePermissions.required().toTypedArray())
        assertEquals(2, BlePermissions.missing(app).size)
        shadowOf(app).grantPermissions(Manifest.permission.BLUETOOTH_SCAN)
        assertEquals(listOf(Manifest.permission.BLUETOOTH_CONNECT), BlePermissions.missing(app))
    }

    /**
     * Connects a [BleReaderTransport] to the device at [address] through Robolectric's GATT
     * shadow, answering each step as a reader would (connected, services, MTU 185).
     */
    private suspend fun connectThroughShadow(
        address: String,
        service: BluetoothGattService,
        notifyChar: BluetoothGattCharacteristic,
    ): Pair<ReaderChannel, BluetoothGatt> = coroutineScope {
        val adapter = app.getSystemService(BluetoothManager::class.java).adapter
        shadowOf(adapter).setEnabled(true)
        val device = adapter.getRemoteDevice(address)
        val transport = BleReaderTransport(app, adapter, profile, desiredMtu = 185, opTimeoutMs = 5_000)
        val connecting = async(start = CoroutineStart.UNDISPATCHED) { transport.connect(device) }
        val gatt: BluetoothGatt = shadowOf(device).bluetoothGatts.single()
        val fake = shadowOf(gatt)
        fake.addDiscoverableService(service)
        fake.allowCharacteristicNotification(notifyChar)
        fake.gattCallback.onConnectionStateChange(gatt, BluetoothGatt.GATT_SUCCESS, BluetoothProfile.STATE_CONNECTED)
        yield()
        fake.gattCallback.onMtuChanged(gatt, 185, BluetoothGatt.GATT_SUCCESS)
        connecting.await() to gatt
    }

    /** A reader's GATT service: write characteristic, notify characteristic with its CCCD. */
    private fun readerService(): Triple<BluetoothGattService, BluetoothGattCharacteristic, BluetoothGattDescriptor> {
        val service = BluetoothGattService(profile.service, BluetoothGattService.SERVICE_TYPE_PRIMARY)
        val notifyChar = BluetoothGattCharacteristic(
            profile.notify, BluetoothGattCharacteristic.PROPERTY_NOTIFY, BluetoothGattCharacteristic.PERMISSION_READ,
        )
        val cccd = BluetoothGattDescriptor(
            UUID.fromString("00002902-0000-1000-8000-00805f9b34fb"), BluetoothGattDescriptor.PERMISSION_WRITE,
        )
        notifyChar.addDescriptor(cccd)
        service.addCharacteristic(
            BluetoothGattCharacteristic(
                profile.write, BluetoothGattCharacteristic.PROPERTY_WRITE, BluetoothGattCharacteristic.PERMISSION_WRITE,
            ),
        )
        service.addCharacteristic(notifyChar)
        return Triple(service, notifyChar, cccd)
    }

    @Test
    fun android_12_uses_the_gatt_calls_that_exist_before_api_33() {
        val sdk = Build.VERSION.SDK_INT
        ReflectionHelpers.setStaticField(Build.VERSION::class.java, "SDK_INT", Build.VERSION_CODES.S_V2)
        try {
            assertEquals(Build.VERSION_CODES.S_V2, Build.VERSION.SDK_INT)
            runBlocking {
                val (service, notifyChar, cccd) = readerService()
                val (channel, gatt) = connectThroughShadow("AA:BB:CC:DD:EE:04", service, notifyChar)
                val fake = shadowOf(gatt)
                @Suppress("DEPRECATION")
                assertArrayEquals(BluetoothGattDescriptor.ENABLE_NOTIFICATION_VALUE, cccd.value)

                val frame = ByteArray(200) { it.toByte() }
                channel.writeFrame(frame)
                assertArrayEquals(frame.copyOfRange(182, 200), fake.latestWrittenBytes)

                // The pre-33 stack calls only the two-argument callback, the value on the characteristic.
                val incoming = async(start = CoroutineStart.UNDISPATCHED) { channel.notifications.first() }
                @Suppress("DEPRECATION")
                notifyChar.value = byteArrayOf(0x02, 0x00, 0x07, 0x03)
                @Suppress("DEPRECATION")
                fake.gattCallback.onCharacteristicChanged(gatt, notifyChar)
                assertArrayEquals(byteArrayOf(0x02, 0x00, 0x07, 0x03), withTimeout(5_000) { incoming.await() })
                channel.close()
            }
        } finally {
            ReflectionHelpers.setStaticField(Build.VERSION::class.java, "SDK_INT", sdk)
        }
    }

    @Test
    fun without_bluetooth_permissions_scan_and_connect_fail_with_a_clear_error() = runBlocking {
        shadowOf(app).denyPermissions(*BlePermissions.required().toTypedArray())
        val adapter = app.getSystemService(BluetoothManager::class.java).adapter
        shadowOf(adapter).setEnabled(true)
        val transport = BleReaderTransport(app, adapter, profile, opTimeoutMs = 1_000)
        val scan = runCatching { transport.scan(1_000) }.exceptionOrNull()
        assertTrue("$scan", scan is BluetoothPermissionException)
        assertEquals(BlePermissions.required(), (scan as BluetoothPermissionException).permissions)
        val connect = runCatching { transport.connect(adapter.getRemoteDevice("AA:BB:CC:DD:EE:05")) }.exceptionOrNull()
        assertTrue("$connect", connect is BluetoothPermissionException)
        assertEquals(listOf(Manifest.permission.BLUETOOTH_CONNECT), (connect as BluetoothPermissionException).permissions)
    }
}
