package com.smartpos.sdk

import com.smartpos.sdk.ffi.PrintJob
import com.smartpos.sdk.ffi.PrinterStatus
import com.smartpos.sdk.ffi.ReceiptCopy
import com.smartpos.sdk.ffi.ReceiptPrinter
import com.smartpos.sdk.ffi.ReceiptWidth
import com.smartpos.sdk.ffi.TxnState
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import java.util.Collections

/** A printer whose paper can run out. */
class PaperPrinter(@Volatile var paper: Boolean) : ReceiptPrinter {
    val printed: MutableList<PrintJob> = Collections.synchronizedList(mutableListOf())

    override fun print(job: PrintJob): PrinterStatus {
        if (!paper) return PrinterStatus.OUT_OF_PAPER
        printed.add(job)
        return PrinterStatus.OK
    }
}

class PrinterTest {
    @Test
    fun `out of paper leaves the sale approved, a later reprint works`() = runBlocking {
        Env().use { env ->
            env.open().use { t ->
                t.signIn("01")
                val printer = PaperPrinter(paper = false)
                t.setPrinter(printer)
                val sale = t.sale(saleOf(2_300, "order-p"))
                val ref = sale.record.reference
                assertEquals(PrinterStatus.OUT_OF_PAPER, t.print(ref, ReceiptCopy.CUSTOMER))
                assertEquals(TxnState.APPROVED, t.transaction(ref)?.state)
                val pending = t.pendingPrints().single()
                assertEquals(ref, pending.reference)
                assertEquals("out_of_paper", pending.lastStatus)

                printer.paper = true
                assertEquals(PrinterStatus.OK, t.reprint(ref, ReceiptCopy.CUSTOMER))
                val job = printer.printed.single()
                assertEquals(ref, job.reference)
                assertEquals(ReceiptCopy.CUSTOMER, job.copy)
                assertTrue(job.reprint)
                assertTrue(job.escpos.isNotEmpty() && job.lines.isNotEmpty())
                assertFalse(job.lines.any { it.contains(TEST_PAN) }, "PAN masked on the receipt")
                assertEquals(emptyList<Any>(), t.pendingPrints())

                assertEquals(PrinterStatus.OK, t.reprintLast(ReceiptCopy.MERCHANT))
                assertEquals(ReceiptCopy.MERCHANT, printer.printed.last().copy)

                val narrow = t.receiptText(ref, ReceiptCopy.CUSTOMER, ReceiptWidth.W32).lines()
                val wide = t.receiptText(ref, ReceiptCopy.CUSTOMER, ReceiptWidth.W48).lines()
                assertTrue(narrow.maxOf { it.length } <= 32 && wide.maxOf { it.length } > 32, "$wide")
                assertTrue(narrow.any { it.contains("0128") })
            }
        }
    }

    @Test
    fun `a printer that throws counts as no printer, the sale stands`() = runBlocking {
        Env().use { env ->
            env.open().use { t ->
                t.signIn("01")
                t.setPrinter(object : ReceiptPrinter {
                    override fun print(job: PrintJob): PrinterStatus = throw IllegalStateException("USB gone")
                })
                val sale = t.sale(saleOf(1_100))
                assertEquals(PrinterStatus.NO_PRINTER, t.print(sale.record.reference, ReceiptCopy.MERCHANT))
                assertEquals(TxnState.APPROVED, t.transaction(sale.record.reference)?.state)
            }
        }
    }
}
