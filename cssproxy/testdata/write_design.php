<?php
// Writes one project's prepared-CSS items into a shared cache exactly the
// way mosparo does (FACTS.md 5.1, 5.2): the adapter is built like
// src/Factory/CacheFactory.php (createConnection(DSN) + new XAdapter($conn),
// namespace '', lifetime 0), then DesignHelper's getItem()->set()/save()
// for design_<uuid>_content and design_<uuid>_hash.
//
// Usage: php write_design.php ADAPTER DSN MARSHALLER UUID HASH CSS_FILE [clear]
//   ADAPTER     redis | memcached
//   MARSHALLER  igbinary (default DefaultMarshaller, as on Debian) |
//               php (new DefaultMarshaller(false), as in the Docker images)
// memcached compression follows php.ini; pass
// -d memcached.compression_type=zlib to switch from FastLZ.
// With "clear", $cache->clear() runs first (memcached: a new namespace
// version, orphaning every earlier key; FACTS 5.4).
// Prints "ok" and exits 0 once a fresh adapter reads the content back.

require_once '/usr/share/php/Symfony/Component/Cache/autoload.php';

use Symfony\Component\Cache\Adapter\MemcachedAdapter;
use Symfony\Component\Cache\Adapter\RedisAdapter;
use Symfony\Component\Cache\Marshaller\DefaultMarshaller;

if ($argc !== 7 && !($argc === 8 && $argv[7] === 'clear')) {
    fwrite(STDERR, "usage: write_design.php ADAPTER DSN MARSHALLER UUID HASH CSS_FILE [clear]\n");
    exit(2);
}
[, $adapterName, $dsn, $marshallerName, $uuid, $hash, $cssFile] = $argv;
$clear = $argc === 8;

$css = file_get_contents($cssFile);
if ($css === false) {
    fwrite(STDERR, "cannot read $cssFile\n");
    exit(2);
}

// null means "let DefaultMarshaller decide", which picks igbinary when the
// extension is loaded: exactly CacheFactory's behaviour.
$marshaller = null;
if ($marshallerName === 'php') {
    $marshaller = new DefaultMarshaller(false);
} elseif ($marshallerName !== 'igbinary') {
    fwrite(STDERR, "unknown marshaller $marshallerName\n");
    exit(2);
}

switch ($adapterName) {
    case 'redis':
        $cache = new RedisAdapter(RedisAdapter::createConnection($dsn), '', 0, $marshaller);
        break;
    case 'memcached':
        $cache = new MemcachedAdapter(MemcachedAdapter::createConnection($dsn), '', 0, $marshaller);
        break;
    default:
        fwrite(STDERR, "unknown adapter $adapterName\n");
        exit(2);
}

if ($clear && !$cache->clear()) {
    fwrite(STDERR, "clear failed\n");
    exit(1);
}

foreach (['design_'.$uuid.'_content' => $css, 'design_'.$uuid.'_hash' => $hash] as $key => $value) {
    $item = $cache->getItem($key);
    $item->set($value);
    if (!$cache->save($item)) {
        fwrite(STDERR, "save $key failed\n");
        exit(1);
    }
}

// Read back through a fresh adapter, as mosparo's next request would.
$check = $adapterName === 'redis'
    ? new RedisAdapter(RedisAdapter::createConnection($dsn), '', 0, $marshaller)
    : new MemcachedAdapter(MemcachedAdapter::createConnection($dsn), '', 0, $marshaller);
$got = $check->getItem('design_'.$uuid.'_content');
if (!$got->isHit() || $got->get() !== $css) {
    fwrite(STDERR, "read-back of design_{$uuid}_content failed\n");
    exit(1);
}
echo "ok\n";
