import Crypto
import TandemCore

/// How a device names the subscriptions it holds in a pull (`PullRequest.subscriptions`),
/// and the server the ones it grants: the first 32 hex digits of the SHA-256 of the lines
/// `KEY TAB UNTIL LF`, sorted by key (bytewise; UNTIL in decimal, empty when the subscription does
/// not end by itself). A key names its channel and projection, so the pair is the whole
/// subscription.
public enum SubscriptionDigest {
    public static func of(_ subscriptions: [(key: String, until: UInt64?)]) -> String {
        var lines: [UInt8] = []
        // Keys are ASCII (`a-z0-9:-`), for which `String`'s order is the bytes' order.
        for (key, until) in subscriptions.sorted(by: { $0.key < $1.key }) {
            lines.append(contentsOf: key.utf8)
            lines.append(0x09)
            if let until { lines.append(contentsOf: String(until).utf8) }
            lines.append(0x0A)
        }
        return hexString(SHA256.hash(data: lines).prefix(16))
    }
}
