# Applied inside the image with `puppet apply`.
file { '/etc/app':
  ensure => directory,
  mode   => '0755',
}

file { '/etc/app/managed-by':
  ensure  => file,
  content => "puppet\n",
  mode    => '0644',
  require => File['/etc/app'],
}

user { 'app':
  ensure => present,
  system => true,
  shell  => '/usr/sbin/nologin',
}
