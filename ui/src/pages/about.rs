//! About: which app this is and where it keeps its data.

use crate::components::ErrorNotice;
use crate::hooks::{Loadable, use_query};
use left4me_protocol::command;
use yew::prelude::*;

#[function_component(About)]
pub fn about() -> Html {
    let facts = use_query(command::AppFacts {}, 0);
    html! {
        <section class="card" aria-labelledby="about-title">
            <h1 id="about-title">{ "About this app" }</h1>
            {
                match facts {
                    Loadable::Loading => html! { <p class="muted" aria-busy="true">{ "Loading…" }</p> },
                    Loadable::Failed(error) => html! { <ErrorNotice {error} /> },
                    Loadable::Ready(facts) => html! {
                        <dl class="facts" id="app-facts">
                            <dt>{ "Version" }</dt>
                            <dd id="app-version">{ &facts.app_version }</dd>
                            <dt>{ "Agent protocol" }</dt>
                            <dd id="protocol-version">{ facts.protocol_version }</dd>
                            <dt>{ "Database" }</dt>
                            <dd id="database-path"><code>{ &facts.database_path }</code></dd>
                            <dt>{ "Schema version" }</dt>
                            <dd id="schema-version">{ facts.schema_version }</dd>
                        </dl>
                    },
                }
            }
        </section>
    }
}
