// The calls strapi-plugin-meilisearch 0.16.5 makes (server/src/services/meilisearch/connector.js),
// with the npm client version it pins (meilisearch 0.48.2, installed here as `meilisearch-strapi`),
// against the service's /meili API: prints what it saw as JSON for tests/test_meili_js.py to check.
// Usage: node strapi_check.mjs <base url>/meili <admin key> <article json file>
import { readFileSync } from "node:fs";
import { MeiliSearch } from "meilisearch-strapi";

const [host, apiKey, articleFile] = process.argv.slice(2);
// The plugin's client.js: the credentials from its store and its own client agent.
const client = new MeiliSearch({ host, apiKey, clientAgents: ["Meilisearch Strapi (v0.16.5)"] });
const index = client.index("articles");
const article = JSON.parse(readFileSync(articleFile, "utf8"));
const out = {};

// A Strapi entry as the plugin reads it, turned into the import format by the collection's
// transformEntry (docs/meilisearch.md), then given the id prefix the plugin's adapter adds.
const entry = { documentId: "x7k2q9", slug: "strapi-entry-one", title: "Okapi census", body: article.body_md };
const transformEntry = (e) => ({
  ...article,
  slug: e.slug,
  title: e.title,
  body_md: e.body,
});
const toDocument = (e) => ({ ...transformEntry(e), _meilisearch_id: `article-${e.documentId}` });
const wait = async (task) => {
  const done = await client.waitForTask(task.taskUid, { timeOutMs: 60000 });
  return { status: done.status, type: done.type, details: done.details, error: done.error ?? null };
};

// getIndexUids: the index list from /stats.
out.indexes = Object.keys((await client.getStats()).indexes);
// addContentTypeInMeiliSearch: the collection's settings (none configured), then its entries.
out.settings = await wait(await index.updateSettings({}));
out.added = await wait(await index.addDocuments([toDocument(entry)], { primaryKey: "_meilisearch_id" }));
out.found = (await index.search("okapi", { attributesToHighlight: ["title"] })).hits.map((h) => h._formatted.title);
// updateEntriesInMeilisearch: an edited entry.
const edited = { ...entry, title: "Okapi census revised" };
out.updated = await wait(await index.updateDocuments([toDocument(edited)], { primaryKey: "_meilisearch_id" }));
out.title = (await index.getDocument("strapi-entry-one")).title;
out.stored_keys = Object.keys(await index.getDocument("strapi-entry-one")).sort();
// getStats: the report page.
out.documents = (await index.getStats()).numberOfDocuments;
// deleteEntriesFromMeiliSearch / an unpublished entry: prefixed ids, which name no slug here.
out.deleted_batch = await wait(await index.deleteDocuments([`article-${entry.documentId}`]));
out.deleted_one = await wait(await index.deleteDocument(`article-${entry.documentId}`));
out.still_there = (await index.search("okapi")).estimatedTotalHits;
console.log(JSON.stringify(out));
