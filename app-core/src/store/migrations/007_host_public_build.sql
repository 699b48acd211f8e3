-- Steam's public build of the game when the app last asked (`install --check`), to show
-- "update available" beside the installed build; NULL until it was asked.
ALTER TABLE hosts ADD COLUMN public_build TEXT;
