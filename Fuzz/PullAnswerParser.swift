// libFuzzer target: what a device does with a binary pull answer (PROTOCOL.md §9.4):
// BinaryPull.decode, then each page's cursor, the mark, and each page's batch (here
// without the deflate, which zlib checks). Built and run by scripts/fuzz. Any input is
// either refused or yields pages whose bytes add up exactly; a crash is a finding.
import TandemCore
import TandemProtocol

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPullAnswer(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let (head, pages) = try? BinaryPull.decode(bytes) else { return 0 }
    precondition(pages.count == head.pages.count, "one byte range per page")
    precondition(pages.map(\.count) == head.pages.map(\.bytes), "each page as long as its head says")
    for page in head.pages { _ = try? Cursor(parsing: page.cursor) }
    for page in pages {
        if let batch = try? ChangeBatch(decoding: page, limits: .init(maxBytes: 1 << 20, maxChanges: 10_000)) {
            precondition(batch.encoded() == page, "a page's batch re-encodes to other bytes")
        }
    }
    return 0
}
