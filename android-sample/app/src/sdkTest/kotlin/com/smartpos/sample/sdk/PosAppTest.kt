package com.smartpos.sample.sdk

import android.view.View
import android.view.ViewGroup
import android.widget.Button
import com.smartpos.sample.PosApp
import com.smartpos.sample.ui.PosActivity
import com.smartpos.sample.ui.Screen
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertTrue
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.Robolectric
import org.robolectric.RobolectricTestRunner
import org.robolectric.annotation.Config
import org.robolectric.shadows.ShadowLooper

/**
 * The real Application and activity on a fresh install: no terminal id, merchant id or host is
 * configured, so the SDK refuses to open the terminal. The app must show that, not crash.
 */
@RunWith(RobolectricTestRunner::class)
@Config(application = PosApp::class)
class PosAppTest {
    private fun buttons(v: View): List<String> = when (v) {
        is Button -> listOf(v.text.toString())
        is ViewGroup -> (0 until v.childCount).flatMap { buttons(v.getChildAt(it)) }
        else -> emptyList()
    }

    @Test
    fun an_unconfigured_terminal_is_an_error_screen_not_a_crash() {
        val controller = Robolectric.buildActivity(PosActivity::class.java).setup()
        val activity = controller.get()
        val end = System.currentTimeMillis() + 20_000
        while (activity.viewModel.state.value.screen != Screen.ERROR && System.currentTimeMillis() < end) {
            ShadowLooper.idleMainLooper()
            Thread.sleep(10)
        }
        ShadowLooper.idleMainLooper()
        val s = activity.viewModel.state.value
        assertEquals(s.toString(), Screen.ERROR, s.screen)
        assertFalse(s.busy)
        assertEquals("sample.not_configured", s.diagnosis?.code)
        assertTrue(s.error!!, s.error!!.startsWith("Config"))
        // The cashier can go back to the login screen (which tries to open again).
        assertTrue(buttons(activity.window.decorView).toString(), "Operator login" in buttons(activity.window.decorView))
        controller.pause().stop().destroy()
    }
}
