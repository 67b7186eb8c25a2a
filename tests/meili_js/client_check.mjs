// The npm `meilisearch` client against the service's /meili API: prints what it saw as JSON for
// tests/test_meili_js.py to check. Usage: node client_check.mjs <base url>/meili <admin key> <article json file>
import { readFileSync } from "node:fs";
import { Meilisearch, MeilisearchApiError } from "meilisearch";

const [host, apiKey, articleFile] = process.argv.slice(2);
const client = new Meilisearch({ host, apiKey });
const index = client.index("articles");
const article = JSON.parse(readFileSync(articleFile, "utf8"));
const out = {};

out.health = await client.health();
const added = await index.addDocuments([{ ...article, slug: "js-client-one", title: "Narwhal migration" }]).waitTask();
out.added = { status: added.status, details: added.details };
const found = await index.search("narwhal", {
  filter: ["slug = 'js-client-one'"],
  facets: ["topics"],
  attributesToHighlight: ["title"],
  sort: ["published_at:desc"],
});
out.search = {
  total: found.estimatedTotalHits,
  title: found.hits[0]?._formatted?.title,
  facets: found.facetDistribution,
};
out.document = (await index.getDocument("js-client-one")).title;
const deleted = await index.deleteDocuments({ filter: "slug = js-client-one" }).waitTask();
out.deleted = { status: deleted.status, details: deleted.details };
out.after = (await index.search("narwhal")).estimatedTotalHits;
try {
  await index.search("", { filter: "topics =" });
} catch (error) {
  out.error = error instanceof MeilisearchApiError ? error.cause?.code : String(error);
}
console.log(JSON.stringify(out));
