import { assertEquals, assertThrows } from "../_assert.ts";
import { fillTemplate, parseTemplate, shapeAnswer } from "../../src/aggregate/mod.ts";

const values = {
  params: { id: "o/1" },
  query: { lang: "nl" },
  headers: { "x-tenant": "acme" },
  inputs: { order: { customer: { id: 7 }, lines: [{ sku: "a b" }] } },
};

Deno.test("fillTemplate() fills every source, URL-encoding each value", () => {
  const template = parseTemplate(
    "/c/{params.id}/{order.customer.id}/{order.lines.0.sku}?lang={query.lang}&t={headers.x-tenant}",
  );
  assertEquals(fillTemplate(template, values), "/c/o%2F1/7/a%20b?lang=nl&t=acme");
  assertEquals(
    fillTemplate(parseTemplate("/items/{item.sku}"), { ...values, item: { sku: "s1" } }),
    "/items/s1",
  );
});

Deno.test("parseTemplate() names a stray brace, a bad placeholder and a need without a field", () => {
  assertThrows(() => parseTemplate("/c/{order.id"), /every brace must close one placeholder/);
  assertThrows(
    () => parseTemplate("/c/{order..id}"),
    /dotted names .*current value is "\{order..id\}"/,
  );
  assertThrows(() => parseTemplate("/c/{order}"), /needs a field: current value is "\{order\}"/);
  assertThrows(() => parseTemplate("/c/{query.a.b}"), /exactly one name/);
});

Deno.test("fillTemplate() refuses a missing value, an object, and a value that would move the path", () => {
  assertThrows(
    () => fillTemplate(parseTemplate("/c/{order.nope}"), values),
    /Cannot fill \{order.nope\} .*current value is missing/,
  );
  assertThrows(
    () => fillTemplate(parseTemplate("/c/{order.customer}"), values),
    /current value is of type object/,
  );
  for (const id of ["", ".", ".."]) {
    assertThrows(
      () => fillTemplate(parseTemplate("/c/{params.id}"), { ...values, params: { id } }),
      /must not be empty, "." or ".."/,
    );
  }
});

Deno.test("shapeAnswer() takes the target, then picks, then renames, leaving the answer as it was", () => {
  const answer = { data: { id: 1, name: "Ada", secret: "x" } };
  assertEquals(
    shapeAnswer(answer, {
      target: "data",
      pick: ["id", "name", "absent"],
      rename: { name: "fullName" },
    }),
    { id: 1, fullName: "Ada" },
  );
  assertEquals(answer.data.secret, "x");
  assertEquals(shapeAnswer(answer, { target: "data.nope" }), null);
  assertEquals(shapeAnswer({ ids: [1, 2] }, { target: "ids", pick: ["x"] }), [1, 2]);
});
