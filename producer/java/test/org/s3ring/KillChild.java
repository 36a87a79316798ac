/* KillChild.java -- puts into a ring until killed, printing each committed key. */
package org.s3ring;

import java.io.PrintStream;

final class KillChild {
    private KillChild() {
    }

    public static void main(String[] args) {
        PrintStream out = System.out;
        byte[] body = new byte[200];
        try (S3Ring r = S3Ring.open(args[0])) {
            for (long i = 0;; i++) {
                body[(int) (i % body.length)]++;
                String key = "kill/" + i;
                if (r.put(key, body, 0, 1 + (int) (i % body.length), 5000) == S3Ring.OK) {
                    out.println(key);
                    out.flush();
                }
            }
        }
    }
}
