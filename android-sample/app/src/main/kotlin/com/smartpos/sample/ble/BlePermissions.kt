package com.smartpos.sample.ble

import android.Manifest
import android.content.Context
import android.content.pm.PackageManager
import android.os.Build

/**
 * Runtime permissions for Bluetooth: Android 12 (API 31) and later need `BLUETOOTH_SCAN` and
 * `BLUETOOTH_CONNECT` (declared with `neverForLocation` in the manifest); older versions need
 * location to scan for BLE devices.
 */
object BlePermissions {
    /** The permissions to request at run time on [sdkInt] to scan for and connect to the BLE reader. */
    fun required(sdkInt: Int = Build.VERSION.SDK_INT): List<String> =
        if (sdkInt >= Build.VERSION_CODES.S) {
            listOf(Manifest.permission.BLUETOOTH_SCAN, Manifest.permission.BLUETOOTH_CONNECT)
        } else {
            listOf(Manifest.permission.ACCESS_FINE_LOCATION)
        }

    /**
     * What talking to a paired or already found device needs (bond state, RFCOMM/GATT connect):
     * `BLUETOOTH_CONNECT` on Android 12+, nothing at run time before (install-time `BLUETOOTH`).
     */
    fun connect(sdkInt: Int = Build.VERSION.SDK_INT): List<String> =
        if (sdkInt >= Build.VERSION_CODES.S) listOf(Manifest.permission.BLUETOOTH_CONNECT) else emptyList()

    /** Those of [required] not granted yet; pass them to `Activity.requestPermissions`. */
    fun missing(context: Context, sdkInt: Int = Build.VERSION.SDK_INT): List<String> = missing(context, required(sdkInt))

    /** Those of [permissions] not granted yet. */
    fun missing(context: Context, permissions: List<String>): List<String> =
        permissions.filter { context.checkSelfPermission(it) != PackageManager.PERMISSION_GRANTED }
}

/** Bluetooth cannot be used until the user grants [permissions] (Android 12+: "Nearby devices"). */
class BluetoothPermissionException(val permissions: List<String>) :
    ReaderLinkException("Bluetooth permission missing: ${permissions.joinToString { it.substringAfterLast('.') }}")
