//! `ddcp api-token`: prints the HTTP API's bearer token (made now if the state dir has none).

use super::CommandError;
use super::output::print_line;
use crate::api::ApiToken;
use crate::config::Config;

pub fn run(config: &Config) -> Result<(), CommandError> {
    super::create_state_dir(config)?;
    let token = ApiToken::load_or_create(&config.state_dir)?;
    print_line(token.reveal())?;
    Ok(())
}
