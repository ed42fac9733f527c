// libFuzzer target: the pull-cursor parser (PROTOCOL.md §9.4). Built and run by
// scripts/fuzz. Any text either is refused or parses to a cursor whose encoding is the
// text itself.
import TandemProtocolCursor

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCursorParser(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    if let cursor = try? Cursor(parsing: text) {
        precondition(cursor.encoded == text, "a parsed cursor encodes to other text")
        precondition((try? Cursor(parsing: cursor.encoded)) == cursor, "a cursor does not survive its own encoding")
    }
    return 0
}
