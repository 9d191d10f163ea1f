// A mutual-TLS handshake between two JVM endpoints configured only from the private.conf
// snippets `hsmsign bundle js7-config` printed (with the operator's passwords filled in), the way
// a JS7 instance loads its keystore: KeyStore "PKCS12" + KeyManagerFactory, the configured
// alias looked up as written (an absent alias fails, as JS7's "Unknown alias" does), the
// truststore for the peer, and the server mapping the client's DN through the peer snippet's
// distinguished-names. Loopback only.
//
// java Js7Tls.java SERVER_CONFIG_DIR SERVER_SNIPPET CLIENT_CONFIG_DIR CLIENT_SNIPPET
import java.io.*;
import java.net.*;
import java.nio.file.*;
import java.security.*;
import java.security.cert.X509Certificate;
import java.util.regex.*;
import javax.net.ssl.*;
import javax.security.auth.x500.X500Principal;

public class Js7Tls {
    record Conf(String keystore, String keyPassword, String storePassword, String alias,
                String truststore, String trustPassword, String dn) {}

    static String unquote(String s) {
        return s.replace("\\\"", "\"").replace("\\\\", "\\");
    }

    static String one(String text, String regex) {
        Matcher m = Pattern.compile(regex, Pattern.DOTALL).matcher(text);
        if (!m.find()) throw new IllegalArgumentException("snippet lacks " + regex);
        return unquote(m.group(1));
    }

    static Conf parse(String dir, String file) throws IOException {
        String t = Files.readString(Path.of(file));
        String q = "\"((?:[^\"\\\\]|\\\\.)*)\"";
        String ks = one(t, "keystore \\{\\s*file=\\$\\{js7.config-directory\\}" + q);
        String keyPw = one(t, "key-password=" + q);
        String storePw = one(t, "keystore \\{.*?store-password=" + q);
        String alias = one(t, "alias=" + q);
        String ts = one(t, "truststores=\\[\\s*\\{\\s*file=\\$\\{js7.config-directory\\}" + q);
        String tsPw = one(t, "truststores=\\[.*?store-password=" + q);
        String dn = one(t, "distinguished-names=\\[\\s*" + q);
        return new Conf(dir + ks, keyPw, storePw, alias, dir + ts, tsPw, dn);
    }

    // Hands out exactly the configured alias, as JS7 does; fails if the keystore lacks it.
    static KeyManager[] keyManagers(Conf c) throws Exception {
        KeyStore ks = KeyStore.getInstance("PKCS12");
        try (InputStream in = new FileInputStream(c.keystore())) {
            ks.load(in, c.storePassword().toCharArray());
        }
        if (!ks.isKeyEntry(c.alias())) {
            throw new KeyStoreException("Unknown alias=" + c.alias() + " in " + c.keystore()
                + " (it holds " + java.util.Collections.list(ks.aliases()) + ")");
        }
        // SunX509 names entries by their plain alias (PKIX prefixes builder indexes).
        KeyManagerFactory kmf = KeyManagerFactory.getInstance("SunX509");
        kmf.init(ks, c.keyPassword().toCharArray());
        X509ExtendedKeyManager base = (X509ExtendedKeyManager) kmf.getKeyManagers()[0];
        return new KeyManager[] { new X509ExtendedKeyManager() {
            public String[] getClientAliases(String t, Principal[] i) { return new String[] { c.alias() }; }
            public String chooseClientAlias(String[] t, Principal[] i, Socket s) { return c.alias(); }
            public String[] getServerAliases(String t, Principal[] i) { return new String[] { c.alias() }; }
            public String chooseServerAlias(String t, Principal[] i, Socket s) { return c.alias(); }
            public X509Certificate[] getCertificateChain(String a) { return base.getCertificateChain(a); }
            public PrivateKey getPrivateKey(String a) { return base.getPrivateKey(a); }
        }};
    }

    static TrustManager[] trustManagers(Conf c) throws Exception {
        KeyStore ts = KeyStore.getInstance("PKCS12");
        try (InputStream in = new FileInputStream(c.truststore())) {
            ts.load(in, c.trustPassword().toCharArray());
        }
        TrustManagerFactory tmf = TrustManagerFactory.getInstance("PKIX");
        tmf.init(ts);
        return tmf.getTrustManagers();
    }

    static SSLContext context(Conf c) throws Exception {
        SSLContext ctx = SSLContext.getInstance("TLSv1.3");
        ctx.init(keyManagers(c), trustManagers(c), null);
        return ctx;
    }

    public static void main(String[] a) throws Exception {
        Conf server = parse(a[0], a[1]);
        Conf client = parse(a[2], a[3]);
        // Both sides are configured before anything listens: a side that cannot load its key
        // fails here and nothing is left waiting.
        SSLContext serverContext = context(server);
        SSLContext clientContext = context(client);
        SSLServerSocket ss = (SSLServerSocket) serverContext.getServerSocketFactory()
            .createServerSocket(0, 1, InetAddress.getLoopbackAddress());
        ss.setNeedClientAuth(true);
        ss.setSoTimeout(30_000);
        Thread t = new Thread(() -> {
            try (SSLSocket s = (SSLSocket) ss.accept()) {
                s.startHandshake();
                X500Principal peer = (X500Principal) s.getSession().getPeerPrincipal();
                // The server accepts the client as the user whose distinguished-names list it.
                boolean known = peer.equals(new X500Principal(client.dn()));
                String msg = (known ? "KNOWN " : "UNKNOWN ") + peer.getName() + "\n";
                s.getOutputStream().write(msg.getBytes(java.nio.charset.StandardCharsets.UTF_8));
                s.getOutputStream().flush();
            } catch (Exception e) {
                System.err.println("server: " + e);
            }
        });
        t.setDaemon(true);
        t.start();
        try (SSLSocket s = (SSLSocket) clientContext.getSocketFactory()
                .createSocket(InetAddress.getLoopbackAddress(), ss.getLocalPort())) {
            s.setSoTimeout(30_000);
            s.startHandshake();
            X500Principal srv = (X500Principal) s.getSession().getPeerPrincipal();
            if (!srv.equals(new X500Principal(server.dn()))) {
                throw new SSLException("server presented " + srv + ", not " + server.dn());
            }
            String line = new BufferedReader(new InputStreamReader(s.getInputStream())).readLine();
            System.out.println("handshake ok: server " + srv.getName() + "; client " + line);
        }
        t.join();
        ss.close();
    }
}
