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
    /** The permissions to request at run time on [sdkInt]. */
    fun required(sdkInt: Int = Build.VERSION.SDK_INT): List<String> =
        if (sdkInt >= Build.VERSION_CODES.S) {
            listOf(Manifest.permission.BLUETOOTH_SCAN, Manifest.permission.BLUETOOTH_CONNECT)
        } else {
            listOf(Manifest.permission.ACCESS_FINE_LOCATION)
        }

    /** Those of [required] not granted yet; pass them to `Activity.requestPermissions`. */
    fun missing(context: Context, sdkInt: Int = Build.VERSION.SDK_INT): List<String> =
        required(sdkInt).filter { context.checkSelfPermission(it) != PackageManager.PERMISSION_GRANTED }
}
