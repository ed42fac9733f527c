/// Slows down repeated failed authentication (PROTOCOL.md §9.13): per presented token, and
/// per client address only when the server sits behind a configured trusted proxy (then
/// the address is the proxy's `X-Forwarded-For`, which nobody else can set). A valid
/// token is never refused because of others' failures: the per-token count is keyed by the
/// token itself, and address counts apply to failing requests only.
actor AuthThrottle {
    struct Window {
        var failures: Int
        var resetsAt: UInt64
    }

    let perToken: Int
    let perAddress: Int
    let windowMillis: UInt64
    /// At most this many keys are remembered; older windows are dropped first.
    let capacity: Int
    private var tokens: [[UInt8]: Window] = [:]
    private var addresses: [String: Window] = [:]

    init(perToken: Int, perAddress: Int, windowMillis: UInt64 = 60_000, capacity: Int = 100_000) {
        self.perToken = perToken
        self.perAddress = perAddress
        self.windowMillis = windowMillis
        self.capacity = capacity
    }

    /// Seconds before this token may be tried again, or nil. A token that failed this
    /// often is refused without a lookup: it is wrong, and will stay wrong.
    func retryAfter(token: [UInt8], now: UInt64) -> Int? {
        guard let window = tokens[token], window.resetsAt > now, window.failures >= perToken else { return nil }
        return Int((window.resetsAt - now + 999) / 1000)
    }

    /// Seconds before a failing request from this address is answered again with 401
    /// rather than 429, or nil. Asked only after a token failed: valid tokens always pass.
    func retryAfter(address: String, now: UInt64) -> Int? {
        guard let window = addresses[address], window.resetsAt > now, window.failures >= perAddress else { return nil }
        return Int((window.resetsAt - now + 999) / 1000)
    }

    func failed(token: [UInt8], address: String?, now: UInt64) {
        Self.count(&tokens, token, now: now, window: windowMillis, capacity: capacity)
        if let address { Self.count(&addresses, address, now: now, window: windowMillis, capacity: capacity) }
    }

    private static func count<Key: Hashable>(_ table: inout [Key: Window], _ key: Key, now: UInt64, window: UInt64, capacity: Int) {
        if var current = table[key], current.resetsAt > now {
            current.failures += 1
            table[key] = current
            return
        }
        if table.count >= capacity {
            table = table.filter { $0.value.resetsAt > now }
            if table.count >= capacity { table.removeAll(keepingCapacity: true) }
        }
        table[key] = Window(failures: 1, resetsAt: now + window)
    }
}
