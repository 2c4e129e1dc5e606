import Foundation
@testable import LossdHTTP
import LossdTestSupport
import Synchronization
import Testing

/// Counts how often the server asks for a plan, and answers with what reached the handler:
/// the plan's label and route token from the context, and the gauges the context reads.
final class PlanCountingResponder: HTTPResponder {
    let plans = Atomic<Int>(0)

    func plan(_ head: HTTPRequestHead) -> RequestPlan {
        plans.add(1, ordering: .relaxed)
        if head.path == "/refused" {
            return RequestPlan(label: "refused", refusal: HTTPResponse(status: HTTPStatus(code: 403), contentType: "text/plain", body: "no"))
        }
        return RequestPlan(label: "label:" + head.path, inline: head.path == "/inline", route: "token:" + head.path)
    }

    func respond(to request: HTTPRequest, context: RequestContext) -> HTTPResponse {
        let token = context.plan?.route as? String ?? "none"
        let gauges = context.gauges()
        return HTTPResponse(
            status: .ok, contentType: "text/plain",
            body: "\(context.plan?.label ?? "none") \(token) open=\(gauges.openConnections)")
    }
}

@Suite("The responder's plan: made once per request, carried to the handler")
struct RequestPlanTests {
    @Test func eachRequestIsPlannedOnceAndTheHandlerSeesThePlan() throws {
        let responder = PlanCountingResponder()
        let running = try RunningServer({ $0.workerThreads = 2 }, responder: responder)
        defer { running.stop() }
        let client = try RawClient(port: running.port)
        // One keep-alive connection: a bodiless request, one with a body, an inline one.
        let first = try client.exchange(get("/a"))
        #expect(first.status == 200)
        #expect(String(decoding: first.body, as: UTF8.self) == "label:/a token:/a open=1")
        let posted = try client.exchange("POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
        #expect(String(decoding: posted.body, as: UTF8.self) == "label:/b token:/b open=1")
        #expect(try client.exchange(get("/inline")).status == 200)
        #expect(responder.plans.load(ordering: .relaxed) == 3)
    }

    @Test func aBodilessRefusalIsAnsweredAndTheConnectionKept() throws {
        let responder = PlanCountingResponder()
        let running = try RunningServer({ _ in }, responder: responder)
        defer { running.stop() }
        let client = try RawClient(port: running.port)
        #expect(try client.exchange(get("/refused")).status == 403)
        #expect(try client.exchange(get("/after")).status == 200)
        #expect(responder.plans.load(ordering: .relaxed) == 2)
    }

    @Test func aRefusedBodyIsNeverReadAndTheConnectionCloses() throws {
        let responder = PlanCountingResponder()
        let running = try RunningServer({ _ in }, responder: responder)
        defer { running.stop() }
        let client = try RawClient(port: running.port)
        try client.send("POST /refused HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\nExpect: 100-continue\r\n\r\n")
        let refused = try client.readResponse()
        #expect(refused.status == 403)
        #expect(refused.header("connection") == "close")
        #expect(client.isClosedByPeer())
    }
}
