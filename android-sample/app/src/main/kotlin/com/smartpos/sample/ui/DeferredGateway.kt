package com.smartpos.sample.ui

import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.emitAll
import kotlinx.coroutines.flow.filterNotNull
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.flow.flow
import kotlinx.coroutines.sync.Mutex
import kotlinx.coroutines.sync.withLock

/**
 * A [PaymentGateway] opened on first use, on the caller's (background) coroutine, never while the
 * app starts on the main thread. [open] builds the real gateway (e.g. `Terminal.open` with the
 * journal and the keys, which reads files and may be refused); when it throws, the command that
 * needed it fails with that error (a [GatewayException] with the SDK's diagnosis, shown on the
 * error screen) and the next command tries to open again, so the app never crash-loops on a
 * terminal that cannot open (not configured yet, journal refused: call support).
 *
 * [events] are the opened gateway's, from the moment it opens.
 */
class DeferredGateway(private val open: suspend () -> PaymentGateway) : PaymentGateway {
    private val lock = Mutex()
    private val opened = MutableStateFlow<PaymentGateway?>(null)

    /** The gateway, opening it first when needed (one opening at a time). */
    private suspend fun gateway(): PaymentGateway =
        opened.value ?: lock.withLock { opened.value ?: open().also { opened.value = it } }

    override val events: Flow<PosEvent> = flow { emitAll(opened.filterNotNull().first().events) }

    override suspend fun ready() {
        gateway().ready()
    }

    override suspend fun login(operator: String, password: String) = gateway().login(operator, password)

    override suspend fun changePassword(operator: String, oldPassword: String, newPassword: String) =
        gateway().changePassword(operator, oldPassword, newPassword)

    override suspend fun sale(amount: Long, idempotencyKey: String) = gateway().sale(amount, idempotencyKey)

    override fun cancelCardWait(): Boolean = opened.value?.cancelCardWait() ?: false

    override suspend fun refundQuote(reference: String) = gateway().refundQuote(reference)

    override suspend fun refund(reference: String, amount: Long, approval: SupervisorApproval?, idempotencyKey: String) =
        gateway().refund(reference, amount, approval, idempotencyKey)

    override suspend fun void(reference: String, idempotencyKey: String) = gateway().void(reference, idempotencyKey)

    override suspend fun print(reference: String, customerCopy: Boolean) = gateway().print(reference, customerCopy)

    override suspend fun reprintLast(customerCopy: Boolean) = gateway().reprintLast(customerCopy)

    override suspend fun settle() = gateway().settle()

    override suspend fun transactions(limit: Int) = gateway().transactions(limit)

    override suspend fun pending() = gateway().pending()

    override suspend fun recover() = gateway().recover()
}
