package smartpos.oracle;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import org.jpos.iso.IFB_BINARY;
import org.jpos.iso.ISOMsg;
import org.jpos.iso.ISOPackager;
import org.jpos.iso.ISOUtil;
import org.jpos.iso.packager.ISO87BPackager;

/**
 * jPOS 2.1.10's stock {@code ISO87BPackager} driven from the command line, as an independent
 * peer for the SmartPOS codec (tests/oracles/jpos_oracle.py, scripts/bench.sh).
 *
 * <pre>
 *   golden             the reference sale packed by jPOS, as hex
 *   check FILE         one message per line: "ID MTI FIELDS OURHEX", FIELDS as
 *                      "n=hex,n=hex" (field values as bytes in hex), OURHEX our packed bytes;
 *                      prints "ID JPOSHEX FIELDS" (jPOS's packing of FIELDS, then jPOS's reading
 *                      of OURHEX) or "ID ERROR reason"
 *   bench N            pack and unpack of the reference sale after warm-up, N timed
 *                      iterations each in batches of 10,000; prints the median of the
 *                      batches' ns per operation
 * </pre>
 *
 * Text fields travel as ISO-8859-1 strings (one char per byte), binary (IFB_BINARY) fields as
 * bytes. jPOS writes the track 2 separator as '=' (nibble D), so the reference sale's field 35
 * uses '=' here where SmartPOS's logical value has 'D'; the wire bytes are the same.
 */
public final class JposOracle {
    private static final ISOPackager PACKAGER = new ISO87BPackager();

    private JposOracle() {}

    /** The reference sale of smartpos_iso8583::reference::cup_sale(), 19 fields. */
    static ISOMsg referenceSale() throws Exception {
        ISOMsg m = new ISOMsg();
        m.setPackager(PACKAGER);
        m.setMTI("0200");
        m.set(2, "6222021234567890123");
        m.set(3, "000000");
        m.set(4, "000000001234");
        m.set(11, "000123");
        m.set(14, "2512");
        m.set(22, "051");
        m.set(23, "001");
        m.set(25, "00");
        m.set(26, "12");
        m.set(35, "6222021234567890123=25122011234567890");
        m.set(41, "12345678");
        m.set(42, "123456789012345");
        m.set(49, "156");
        m.set(52, ISOUtil.hex2byte("1A2B3C4D5E6F7A8B"));
        m.set(53, "2600000000000000");
        m.set(55, latin1(ISOUtil.hex2byte(
                "9F260801234567" + "89ABCDEF9F2701809F360200019505" + "0000000000")));
        m.set(60, "2200000100050");
        m.set(63, "CUP");
        m.set(64, ISOUtil.hex2byte("A1B2C3D4E5F60718"));
        return m;
    }

    static String latin1(byte[] b) {
        return new String(b, StandardCharsets.ISO_8859_1);
    }

    static boolean isBinary(int field) {
        return PACKAGER instanceof ISO87BPackager
                && ((ISO87BPackager) PACKAGER).getFieldPackager(field) instanceof IFB_BINARY;
    }

    static String check(String line) {
        String[] parts = line.trim().split(" ");
        String id = parts[0];
        try {
            ISOMsg m = new ISOMsg();
            m.setPackager(PACKAGER);
            m.setMTI(parts[1]);
            if (!parts[2].equals("-")) {
                for (String kv : parts[2].split(",")) {
                    int eq = kv.indexOf('=');
                    int n = Integer.parseInt(kv.substring(0, eq));
                    byte[] v = ISOUtil.hex2byte(kv.substring(eq + 1));
                    if (isBinary(n)) {
                        m.set(n, v);
                    } else {
                        m.set(n, latin1(v));
                    }
                }
            }
            String packed = ISOUtil.hexString(m.pack());
            StringBuilder read = new StringBuilder();
            if (parts.length > 3 && !parts[3].equals("-")) {
                ISOMsg back = new ISOMsg();
                back.setPackager(PACKAGER);
                back.unpack(ISOUtil.hex2byte(parts[3]));
                read.append("mti=").append(back.getMTI());
                for (int n = 2; n <= 128; n++) {
                    if (!back.hasField(n)) {
                        continue;
                    }
                    byte[] v = isBinary(n)
                            ? back.getBytes(n)
                            : back.getString(n).getBytes(StandardCharsets.ISO_8859_1);
                    read.append(',').append(n).append('=').append(ISOUtil.hexString(v));
                }
            } else {
                read.append('-');
            }
            return id + " " + packed + " " + read;
        } catch (Exception e) {
            return id + " ERROR " + e.toString().replace('\n', ' ');
        }
    }

    /** Median of per-batch ns/op: robust to the preemptions of a loaded machine. */
    static double median(double[] xs) {
        double[] s = xs.clone();
        java.util.Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }

    static void bench(int iterations) throws Exception {
        ISOMsg m = referenceSale();
        byte[] packed = m.pack();
        long sink = 0;
        // Warm-up: let the JIT compile both paths before the clock starts.
        for (int round = 0; round < 3; round++) {
            for (int i = 0; i < iterations; i++) {
                sink += m.pack().length;
                ISOMsg back = new ISOMsg();
                back.setPackager(PACKAGER);
                sink += back.unpack(packed);
            }
        }
        int batch = 10_000;
        int batches = Math.max(1, iterations / batch);
        double[] pack = new double[batches];
        double[] unpack = new double[batches];
        for (int b = 0; b < batches; b++) {
            long start = System.nanoTime();
            for (int i = 0; i < batch; i++) {
                sink += m.pack().length;
            }
            pack[b] = (System.nanoTime() - start) / (double) batch;
            start = System.nanoTime();
            for (int i = 0; i < batch; i++) {
                ISOMsg back = new ISOMsg();
                back.setPackager(PACKAGER);
                sink += back.unpack(packed);
            }
            unpack[b] = (System.nanoTime() - start) / (double) batch;
        }
        System.out.printf("jPOS 2.1.10 ISO87BPackager reference sale (%d bytes, %d batches of %d, median of"
                + " batches; sink %d)%n", packed.length, batches, batch, sink % 10);
        System.out.printf("jpos/iso87b/pack   %10.0f ns%n", median(pack));
        System.out.printf("jpos/iso87b/unpack %10.0f ns%n", median(unpack));
    }

    public static void main(String[] args) throws Exception {
        String mode = args.length > 0 ? args[0] : "";
        switch (mode) {
            case "golden":
                System.out.println(ISOUtil.hexString(referenceSale().pack()));
                break;
            case "check":
                try (BufferedReader r = new BufferedReader(new InputStreamReader(
                        new java.io.FileInputStream(args[1]), StandardCharsets.US_ASCII))) {
                    String line;
                    while ((line = r.readLine()) != null) {
                        if (!line.isBlank()) {
                            System.out.println(check(line));
                        }
                    }
                }
                break;
            case "bench":
                bench(args.length > 1 ? Integer.parseInt(args[1]) : 1_000_000);
                break;
            default:
                System.err.println("usage: JposOracle golden | check FILE | bench N");
                System.exit(2);
        }
    }
}
