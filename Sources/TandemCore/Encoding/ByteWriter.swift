/// Appends the primitives of PROTOCOL.md §3.1 to a byte buffer.
struct ByteWriter {
    var bytes: [UInt8] = []

    init(capacity: Int = 0) { bytes.reserveCapacity(capacity) }

    mutating func byte(_ value: UInt8) { bytes.append(value) }

    mutating func raw(_ value: some Sequence<UInt8>) { bytes.append(contentsOf: value) }

    /// Unsigned LEB128, shortest form.
    mutating func varint(_ value: UInt64) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
    }

    mutating func varint(_ value: Int) { varint(UInt64(value)) }

    /// Zigzag then LEB128: small magnitudes of either sign stay short.
    mutating func signed(_ value: Int64) {
        varint(UInt64(bitPattern: (value << 1) ^ (value >> 63)))
    }

    /// A varint length, then the bytes.
    mutating func lengthPrefixed(_ value: some Collection<UInt8>) {
        varint(value.count)
        bytes.append(contentsOf: value)
    }

    mutating func identifier<K>(_ id: Identifier<K>) {
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: id.high >> UInt64(shift))) }
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: id.low >> UInt64(shift))) }
    }
}

/// Reads the primitives of PROTOCOL.md §3.1, refusing any non-canonical form.
struct ByteReader {
    let bytes: [UInt8]
    private(set) var offset: Int
    let end: Int

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
        self.offset = 0
        self.end = bytes.count
    }

    var isAtEnd: Bool { offset == end }
    var remaining: Int { end - offset }

    func fail(_ malformation: Malformation) -> TandemCoreError { .malformed(malformation, offset: offset) }

    mutating func byte() throws(TandemCoreError) -> UInt8 {
        guard offset < end else { throw fail(.truncated) }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func raw(_ count: Int) throws(TandemCoreError) -> ArraySlice<UInt8> {
        guard count >= 0, count <= remaining else { throw fail(.truncated) }
        defer { offset += count }
        return bytes[offset..<offset + count]
    }

    mutating func varint() throws(TandemCoreError) -> UInt64 {
        let start = offset
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard offset < end else { throw fail(.truncated) }
            let byte = bytes[offset]
            offset += 1
            if shift == 63 && byte > 1 { offset = start; throw fail(.varintOverflow) }
            result |= UInt64(byte & 0x7f) << shift
            if byte & 0x80 == 0 {
                // A final zero byte after the first means a longer form than needed.
                if byte == 0 && offset - start > 1 { offset = start; throw fail(.nonMinimalVarint) }
                return result
            }
            shift += 7
            if shift > 63 { offset = start; throw fail(.varintOverflow) }
        }
    }

    /// A varint that must fit `limit`, as counts and lengths do.
    mutating func count(limit: Int, what: String) throws(TandemCoreError) -> Int {
        let value = try varint()
        guard value <= UInt64(limit) else { throw .limitExceeded(what: what, limit: limit) }
        return Int(value)
    }

    mutating func signed() throws(TandemCoreError) -> Int64 {
        let raw = try varint()
        return Int64(bitPattern: (raw >> 1) ^ (0 &- (raw & 1)))
    }

    mutating func identifier<K>(_: Identifier<K>.Type = Identifier<K>.self) throws(TandemCoreError) -> Identifier<K> {
        let slice = try raw(16)
        var high: UInt64 = 0
        var low: UInt64 = 0
        var index = slice.startIndex
        for _ in 0..<8 { high = high << 8 | UInt64(slice[index]); index += 1 }
        for _ in 0..<8 { low = low << 8 | UInt64(slice[index]); index += 1 }
        return Identifier(high: high, low: low)
    }

    mutating func utf8(length: Int) throws(TandemCoreError) -> String {
        let start = offset
        let slice = try raw(length)
        guard let string = String(validating: slice, as: UTF8.self) else {
            offset = start
            throw fail(.invalidUTF8)
        }
        return string
    }
}
