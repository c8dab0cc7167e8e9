package com.smartpos.sample.print

import android.app.PendingIntent
import android.content.Context
import android.hardware.usb.UsbConstants
import android.hardware.usb.UsbDevice
import android.hardware.usb.UsbDeviceConnection
import android.hardware.usb.UsbEndpoint
import android.hardware.usb.UsbInterface
import android.hardware.usb.UsbManager
import android.os.Parcelable
import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertTrue
import org.junit.Before
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.RobolectricTestRunner
import org.robolectric.RuntimeEnvironment
import org.robolectric.annotation.Config
import org.robolectric.annotation.Implementation
import org.robolectric.annotation.Implements
import org.robolectric.shadow.api.Shadow
import org.robolectric.shadows.ShadowUsbDeviceConnection
import org.robolectric.shadows.ShadowUsbManager
import org.robolectric.util.ReflectionHelpers
import org.robolectric.util.ReflectionHelpers.ClassParameter
import java.io.ByteArrayOutputStream

/**
 * A USB printer on the other end of [UsbDeviceConnection]: records the bulk OUT bytes (taking
 * at most [maxPerTransfer] per call, as a slow printer does), answers the printer class's
 * GET_PORT_STATUS with [portStatus], fails bulk transfers when [broken].
 */
@Implements(UsbDeviceConnection::class)
class FakeUsbPrinterConnection : ShadowUsbDeviceConnection() {
    @Implementation
    override fun claimInterface(intf: UsbInterface?, force: Boolean): Boolean {
        claimed++
        return true
    }

    @Implementation
    override fun releaseInterface(intf: UsbInterface?): Boolean {
        released++
        return true
    }

    @Implementation
    override fun controlTransfer(
        requestType: Int, request: Int, value: Int, index: Int, buffer: ByteArray?, length: Int, timeout: Int,
    ): Int {
        controls += "%02X/%d".format(requestType, request)
        if (buffer == null || length < 1) return -1
        buffer[0] = portStatus.toByte()
        return 1
    }

    @Implementation
    override fun bulkTransfer(endpoint: UsbEndpoint?, buffer: ByteArray?, offset: Int, length: Int, timeout: Int): Int {
        if (broken || buffer == null) return -1
        val n = minOf(length, maxPerTransfer)
        printed.write(buffer, offset, n)
        return n
    }

    companion object {
        /** Everything the printer received. */
        @JvmStatic
        val printed = ByteArrayOutputStream()

        /** GET_PORT_STATUS answer: bit 3 not error, bit 4 selected, bit 5 paper empty. */
        @JvmStatic
        var portStatus = 0x18

        @JvmStatic
        var broken = false

        @JvmStatic
        var maxPerTransfer = 4_096

        @JvmStatic
        var claimed = 0

        @JvmStatic
        var released = 0

        @JvmStatic
        val controls = mutableListOf<String>()

        /** Back to a healthy printer. */
        fun reset() {
            printed.reset()
            portStatus = 0x18
            broken = false
            maxPerTransfer = 4_096
            claimed = 0
            released = 0
            controls.clear()
        }

        /** A printer-class device with one bulk OUT endpoint (hidden constructors, by reflection). */
        fun device(name: String = "/dev/bus/usb/001/002"): UsbDevice {
            val int = Integer.TYPE
            val endpoint = ReflectionHelpers.callConstructor(
                UsbEndpoint::class.java,
                ClassParameter.from(int, 0x01), // address: endpoint 1, OUT
                ClassParameter.from(int, UsbConstants.USB_ENDPOINT_XFER_BULK),
                ClassParameter.from(int, 64),
                ClassParameter.from(int, 0),
            )
            val intf = ReflectionHelpers.callConstructor(
                UsbInterface::class.java,
                ClassParameter.from(int, 0),
                ClassParameter.from(int, 0),
                ClassParameter.from(String::class.java, "printer"),
                ClassParameter.from(int, UsbConstants.USB_CLASS_PRINTER),
                ClassParameter.from(int, 1),
                ClassParameter.from(int, 2),
            )
            ReflectionHelpers.callInstanceMethod<Any>(
                intf, "setEndpoints", ClassParameter.from(Array<Parcelable>::class.java, arrayOf<Parcelable>(endpoint)),
            )
            val config = ReflectionHelpers.callConstructor(
                Class.forName("android.hardware.usb.UsbConfiguration"),
                ClassParameter.from(int, 1),
                ClassParameter.from(String::class.java, "config"),
                ClassParameter.from(int, 0),
                ClassParameter.from(int, 50),
            )
            ReflectionHelpers.callInstanceMethod<Any>(
                config, "setInterfaces", ClassParameter.from(Array<Parcelable>::class.java, arrayOf<Parcelable>(intf)),
            )
            val configs = java.lang.reflect.Array.newInstance(config.javaClass, 1).also { java.lang.reflect.Array.set(it, 0, config) }
            val bool = java.lang.Boolean.TYPE
            val builder = ReflectionHelpers.callConstructor(
                Class.forName("android.hardware.usb.UsbDevice\$Builder"),
                ClassParameter.from(String::class.java, name),
                ClassParameter.from(int, 0x0416),
                ClassParameter.from(int, 0x5011),
                ClassParameter.from(int, 0),
                ClassParameter.from(int, 0),
                ClassParameter.from(int, 0),
                ClassParameter.from(String::class.java, "TEST"),
                ClassParameter.from(String::class.java, "ESC/POS 80mm"),
                ClassParameter.from(String::class.java, "1.0"),
                ClassParameter.from(configs.javaClass, configs),
                ClassParameter.from(String::class.java, "TEST0001"),
                ClassParameter.from(bool, false),
                ClassParameter.from(bool, false),
                ClassParameter.from(bool, false),
                ClassParameter.from(bool, false),
                ClassParameter.from(bool, false),
            )
            // The serial number is read through a (hidden) AIDL interface: a proxy that has none.
            val serialReaderClass = Class.forName("android.hardware.usb.IUsbSerialReader")
            val serialReader = java.lang.reflect.Proxy.newProxyInstance(serialReaderClass.classLoader, arrayOf(serialReaderClass)) { _, _, _ -> null }
            return ReflectionHelpers.callInstanceMethod(builder, "build", ClassParameter.from(serialReaderClass, serialReader))
        }
    }
}

/** `UsbManager` whose permission dialog is recorded instead of shown. */
@Implements(UsbManager::class)
class PermissionRecordingUsbManager : ShadowUsbManager() {
    /** Devices the app asked permission for, and the broadcast it expects back. */
    val requested = mutableListOf<Pair<String, PendingIntent>>()

    @Implementation
    fun requestPermission(device: UsbDevice, pi: PendingIntent) {
        requested += device.deviceName to pi
    }
}

@RunWith(RobolectricTestRunner::class)
@Config(shadows = [FakeUsbPrinterConnection::class, PermissionRecordingUsbManager::class])
class UsbPrinterTest {
    private val context: Context = RuntimeEnvironment.getApplication()
    private val usb: UsbManager = context.getSystemService(UsbManager::class.java)
    private val receipt = ByteArray(40_000) { (it % 90 + 32).toByte() } + byteArrayOf(0x1D, 0x56, 0x00)

    @Before
    fun setUp() {
        FakeUsbPrinterConnection.reset()
    }

    private fun shadowUsb(): PermissionRecordingUsbManager = Shadow.extract(usb)

    @Test
    fun asks_for_permission_first_then_prints_every_byte_by_bulk_transfer() {
        val device = FakeUsbPrinterConnection.device()
        shadowUsb().addOrUpdateUsbDevice(device, false)
        val printer = UsbPrinter(context, usb)
        assertTrue(printer.isAvailable())
        assertEquals("USB /dev/bus/usb/001/002", printer.name)

        assertEquals(PrintStatus.NO_PERMISSION, printer.print(receipt))
        val (asked, intent) = shadowUsb().requested.single()
        assertEquals(device.deviceName, asked)
        assertTrue(intent.isBroadcast)
        assertEquals(0, FakeUsbPrinterConnection.printed.size())

        // The user said yes (the broadcast of ACTION_USB_PERMISSION): the next print goes out.
        shadowUsb().addOrUpdateUsbDevice(device, true)
        assertEquals(PrintStatus.PRINTED, printer.print(receipt))
        assertArrayEquals(receipt, FakeUsbPrinterConnection.printed.toByteArray())
        assertEquals(listOf("A1/1"), FakeUsbPrinterConnection.controls)
        assertEquals(1, FakeUsbPrinterConnection.claimed)
        assertEquals(1, FakeUsbPrinterConnection.released)
    }

    @Test
    fun paper_end_in_the_port_status_prints_nothing() {
        shadowUsb().addOrUpdateUsbDevice(FakeUsbPrinterConnection.device(), true)
        FakeUsbPrinterConnection.portStatus = 0x38
        assertEquals(PrintStatus.OUT_OF_PAPER, UsbPrinter(context, usb).print(receipt))
        assertEquals(0, FakeUsbPrinterConnection.printed.size())
        assertEquals("the interface is released", 1, FakeUsbPrinterConnection.released)
    }

    @Test
    fun a_failing_bulk_transfer_is_failed_and_no_device_is_no_printer() {
        val printer = UsbPrinter(context, usb)
        assertFalse(printer.isAvailable())
        assertEquals(PrintStatus.NO_PRINTER, printer.print(receipt))
        shadowUsb().addOrUpdateUsbDevice(FakeUsbPrinterConnection.device(), true)
        FakeUsbPrinterConnection.broken = true
        assertEquals(PrintStatus.FAILED, printer.print(receipt))
    }
}
